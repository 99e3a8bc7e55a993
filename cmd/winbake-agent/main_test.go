package main

import (
	"bytes"
	"debug/pe"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/winbake/packer-plugin-winbake/internal/agent"
)

// On the test host (not Windows) the agent refuses with its usual document.
func TestNeedsWindows(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Fatal("these tests expect a non-Windows host")
	}
	var out, errb bytes.Buffer
	code := run([]string{"boot-time"}, nil, &out, &errb)
	var doc agent.Header
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("stdout %q: %v", out.String(), err)
	}
	if code != int(agent.ExitUnsupported) || doc.OK || doc.Verb != "boot-time" || !strings.Contains(doc.Error, "needs Windows") ||
		!strings.Contains(errb.String(), "needs Windows") {
		t.Errorf("code %d, doc %+v, stderr %q", code, doc, errb.String())
	}
}

// TestCrossCompileWindows keeps the Windows build honest: the agent must
// build for windows/amd64 as scripts/build-agent.sh builds it, into a PE
// executable for AMD64 with a console subsystem.
func TestCrossCompileWindows(t *testing.T) {
	// go test puts its own GOROOT/bin first in PATH.
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command: %v", err)
	}
	out := filepath.Join(t.TempDir(), "winbake-agent.exe")
	cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./cmd/winbake-agent")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("GOOS=windows GOARCH=amd64 go build ./cmd/winbake-agent: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("MZ")) {
		t.Fatalf("%s does not start with MZ: % x", out, b[:min(len(b), 16)])
	}
	checkWindowsAMD64(t, b)
}

// checkWindowsAMD64 fails t unless b is a PE console executable for AMD64.
func checkWindowsAMD64(t *testing.T, b []byte) {
	t.Helper()
	f, err := pe.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PE file: %v", err)
	}
	defer f.Close()
	if f.Machine != pe.IMAGE_FILE_MACHINE_AMD64 {
		t.Errorf("machine %#x, want AMD64 (%#x)", f.Machine, pe.IMAGE_FILE_MACHINE_AMD64)
	}
	oh, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	if !ok {
		t.Fatalf("optional header %T, want PE32+", f.OptionalHeader)
	}
	if oh.Subsystem != pe.IMAGE_SUBSYSTEM_WINDOWS_CUI {
		t.Errorf("subsystem %d, want console (%d)", oh.Subsystem, pe.IMAGE_SUBSYSTEM_WINDOWS_CUI)
	}
}
