package windowssys

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/agent"
)

func TestSplitKey(t *testing.T) {
	for _, tc := range []struct{ key, hive, path string }{
		{`HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion`, "HKLM", `SOFTWARE\Microsoft\Windows NT\CurrentVersion`},
		{`HKEY_LOCAL_MACHINE\SYSTEM\`, "HKLM", `SYSTEM`},
		{`hkcu\Software`, "HKCU", `Software`},
		{`HKU`, "HKU", ``},
		{`HKCR\.msu`, "HKCR", `.msu`},
		{`HKEY_CURRENT_CONFIG\System`, "HKCC", `System`},
	} {
		hive, path, err := splitKey(tc.key)
		if err != nil || hive != tc.hive || path != tc.path {
			t.Errorf("splitKey(%q) = %q, %q, %v", tc.key, hive, path, err)
		}
	}
	for _, key := range []string{`SOFTWARE\Microsoft`, ``, `HKLM/SOFTWARE`} {
		if _, _, err := splitKey(key); err == nil {
			t.Errorf("splitKey(%q) accepted", key)
		}
	}
}

func TestShutdownArgs(t *testing.T) {
	for _, tc := range []struct {
		restart bool
		delay   time.Duration
		reason  string
		want    []string
	}{
		{true, 0, "winbake restart", []string{"/r", "/f", "/t", "0", "/d", "p:4:1", "/c", "winbake restart"}},
		{true, 90 * time.Second, `say "hi"`, []string{"/r", "/f", "/t", "90", "/d", "p:4:1", "/c", `say "hi"`}},
		{false, 1500 * time.Millisecond, "", []string{"/s", "/f", "/t", "2", "/d", "p:4:1"}},
	} {
		if got := shutdownArgs(tc.restart, tc.delay, tc.reason); !slices.Equal(got, tc.want) {
			t.Errorf("shutdownArgs(%t, %s, %q) = %q, want %q", tc.restart, tc.delay, tc.reason, got, tc.want)
		}
	}
	long := shutdownArgs(true, 0, strings.Repeat("é", agent.MaxReasonLength+10))
	if got := []rune(long[len(long)-1]); len(got) != agent.MaxReasonLength {
		t.Errorf("reason of %d characters, want it cut to %d", len(got), agent.MaxReasonLength)
	}
}

func TestShutdownError(t *testing.T) {
	args := []string{"/r", "/t", "0"}
	if err := shutdownError(args, 0, ""); err != nil {
		t.Errorf("exit 0: %v", err)
	}
	for _, code := range []uint32{1115, 1190} {
		if err := shutdownError(args, code, ""); !errors.Is(err, agent.ErrShutdownInProgress) {
			t.Errorf("exit %d: %v", code, err)
		}
	}
	err := shutdownError(args, 5, "Access is denied.(5)\r\n")
	if err == nil || errors.Is(err, agent.ErrShutdownInProgress) || !strings.Contains(err.Error(), "exit code 5 (0x5): Access is denied.(5)") {
		t.Errorf("exit 5: %v", err)
	}
}

func TestFileTimeToTime(t *testing.T) {
	// 2024-01-02T03:04:05.1234567Z as a FILETIME.
	got := fileTimeToTime(133486382451234567)
	want := time.Date(2024, 1, 2, 3, 4, 5, 123456700, time.UTC)
	if !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("got %v, want %v", got, want)
	}
}
