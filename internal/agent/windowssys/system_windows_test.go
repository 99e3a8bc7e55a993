//go:build windows

package windowssys

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/agent"
)

// These run only on Windows (a Windows CI runner or a developer machine).

func TestWindowsRegistry(t *testing.T) {
	r := New().Registry()
	build, ok, err := r.String(agent.KeyCurrentVersion, "CurrentBuild")
	if err != nil || !ok || build == "" {
		t.Errorf("CurrentBuild = %q, %t, %v", build, ok, err)
	}
	if _, ok, err := r.DWORD(agent.KeyCurrentVersion, "NoSuchValue"); ok || err != nil {
		t.Errorf("absent value: %t, %v", ok, err)
	}
	if ok, err := r.KeyExists(`HKLM\SOFTWARE\winbake-no-such-key`); ok || err != nil {
		t.Errorf("absent key: %t, %v", ok, err)
	}
	if _, err := agent.CheckPendingReboot(r); err != nil {
		t.Errorf("CheckPendingReboot: %v", err)
	}
}

func TestWindowsExitCodesAreDWORDs(t *testing.T) {
	cmd := filepath.Join(os.Getenv("SystemRoot"), "System32", "cmd.exe")
	for arg, want := range map[string]uint32{"3010": 3010, "-2146498530": 0x800F081E} {
		var out bytes.Buffer
		code, err := New().Processes().Run(context.Background(), cmd, []string{"/c", "exit " + arg}, &out, &out)
		if err != nil || code != want {
			t.Errorf("exit %s: code %d, %v, want %d", arg, code, err, want)
		}
	}
	if _, err := New().Processes().Run(context.Background(), `C:\no\such.exe`, nil, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Error("running a missing program did not fail")
	}
}

func TestWindowsBootTime(t *testing.T) {
	p := New().Power()
	a, err := p.BootTime()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := p.BootTime()
	if !a.Equal(b) || !a.Before(time.Now()) || a.Before(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("boot times %v, %v", a, b)
	}
}
