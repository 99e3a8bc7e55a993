package winsim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"math/rand"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/masterzen/winrm"
)

var moduleDirs sync.Map

// moduleFile is the path of a file of a module in the build list.
func moduleFile(t *testing.T, module, file string) string {
	t.Helper()
	dir, ok := moduleDirs.Load(module)
	if !ok {
		// The version in the build list; downloaded if the cache lacks it.
		out, err := exec.Command("go", "mod", "download", "-json", module).Output()
		if err != nil {
			t.Fatalf("go mod download %s: %v", module, err)
		}
		var info struct{ Dir string }
		if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
			t.Fatalf("go mod download %s: %s", module, out)
		}
		dir = info.Dir
		moduleDirs.Store(module, dir)
	}
	return filepath.Join(dir.(string), file)
}

// stringLiteral returns the one string literal of a Go file that
// contains substr: the command texts the client libraries send.
func stringLiteral(t *testing.T, path, substr string) string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	ast.Inspect(f, func(n ast.Node) bool {
		if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if s, err := strconv.Unquote(lit.Value); err == nil && strings.Contains(s, substr) {
				found = append(found, s)
			}
		}
		return true
	})
	if len(found) != 1 {
		t.Fatalf("%s: %d string literals contain %q", path, len(found), substr)
	}
	return found[0]
}

// winrmcpTexts are winrmcp's command texts, from its source.
type winrmcpTexts struct {
	appendFmt, restoreFmt, cleanupFmt string
}

func loadWinrmcp(t *testing.T) winrmcpTexts {
	cp := moduleFile(t, "github.com/packer-community/winrmcp", "winrmcp/cp.go")
	return winrmcpTexts{
		appendFmt:  stringLiteral(t, cp, "echo %s >>"),
		restoreFmt: stringLiteral(t, cp, "$dest_file_path = [System.IO.Path]::GetFullPath"),
		cleanupFmt: stringLiteral(t, cp, "Remove-Item $tmp_file_path"),
	}
}

// winrmcpPath is winrmcp's winPath: paths with blanks get single quotes.
func winrmcpPath(p string) string {
	if strings.Contains(p, " ") {
		p = fmt.Sprintf("'%s'", strings.Trim(p, "'\""))
	}
	return strings.ReplaceAll(p, "/", `\`)
}

// upload replays winrmcp's Write(toPath, data) against the Host: echo
// chunks through cmd.exe, then the restore and cleanup scripts through
// PowerShell, and returns the restore's result.
func upload(t *testing.T, m *Machine, w winrmcpTexts, toPath string, data []byte) result {
	t.Helper()
	tempFile := fmt.Sprintf("winrmcp-%d.tmp", rand.Int63())
	filePath := `%TEMP%\` + tempFile
	chunk := ((8000 - len(filePath)) / 4) * 3
	for off := 0; off < len(data); off += chunk {
		end := min(off+chunk, len(data))
		line := fmt.Sprintf(w.appendFmt, base64.StdEncoding.EncodeToString(data[off:end]), filePath)
		if len(line) > cmdMaxLine {
			t.Fatalf("chunk command of %d characters", len(line))
		}
		expect(t, run(t, m, line), 0, "", "")
	}
	tempPath := `$env:TEMP\` + tempFile
	restore := winrm.Powershell(fmt.Sprintf(w.restoreFmt, tempPath, winrmcpPath(toPath)))
	if len(restore) > cmdMaxLine {
		t.Fatalf("restore command of %d characters", len(restore))
	}
	r := run(t, m, restore)
	expect(t, run(t, m, winrm.Powershell(fmt.Sprintf(w.cleanupFmt, tempPath))), 0, "", "")
	if ok, _ := m.FS().exists(`C:\Users\vagrant\AppData\Local\Temp\` + tempFile); ok {
		t.Errorf("cleanup left %s", tempFile)
	}
	return r
}

func TestWinrmcpUpload(t *testing.T) {
	w := loadWinrmcp(t)
	m := newMachine(t, Options{})
	data := make([]byte, 100<<10)
	rand.New(rand.NewSource(1)).Read(data)

	dest := `C:\Program Files\winbake\agent payload.bin`
	expect(t, upload(t, m, w, dest, data), 0, "", "")
	got, err := m.FS().ReadFile(dest)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("uploaded file: %d bytes, err %v; want %d bytes", len(got), err, len(data))
	}
	// An existing file is replaced.
	expect(t, upload(t, m, w, `c:/program files/WINBAKE/agent payload.bin`, []byte("short")), 0, "", "")
	if got, _ := m.FS().ReadFile(dest); string(got) != "short" {
		t.Errorf("replaced file = %q", got)
	}
	// An empty upload sends no chunk: the restore creates an empty file.
	expect(t, upload(t, m, w, `C:\ProgramData\winbake\empty.txt`, nil), 0, "", "")
	if got, err := m.FS().ReadFile(`C:\ProgramData\winbake\empty.txt`); err != nil || len(got) != 0 {
		t.Errorf("empty upload: %q, %v", got, err)
	}
	// A directory as destination: "restore operation returned code=1".
	expect(t, upload(t, m, w, `C:\Windows`, []byte("x")), 1, "", "")
	// A relative destination resolves against the profile directory.
	expect(t, upload(t, m, w, `rel.txt`, []byte("rel")), 0, "", "")
	if got, _ := m.FS().ReadFile(`C:\Users\vagrant\rel.txt`); string(got) != "rel" {
		t.Errorf("relative upload = %q", got)
	}
}

func TestWinrmcpRestoreRejectsCorruptUpload(t *testing.T) {
	w := loadWinrmcp(t)
	m := newMachine(t, Options{})
	if err := m.FS().WriteFile(`C:\Users\vagrant\AppData\Local\Temp\winrmcp-bad.tmp`, []byte("QUJD \r\n!!!!\r\n")); err != nil {
		t.Fatal(err)
	}
	r := run(t, m, winrm.Powershell(fmt.Sprintf(w.restoreFmt, `$env:TEMP\winrmcp-bad.tmp`, `C:\x.bin`)))
	if r.code != 1 || !strings.Contains(r.stderr, "FromBase64String") || !strings.HasPrefix(r.stderr, "#< CLIXML") {
		t.Errorf("got %v", r)
	}
	if got, _ := m.FS().ReadFile(`C:\x.bin`); string(got) != "ABC" {
		t.Errorf("partial file = %q", got)
	}
}

func TestWinrmcpRestoreVariantIsNotRecognised(t *testing.T) {
	w := loadWinrmcp(t)
	f := &failures{}
	m := newMachine(t, Options{Failf: f.Failf})
	script := strings.Replace(fmt.Sprintf(w.restoreFmt, `$env:TEMP\x.tmp`, `C:\x.bin`), "Exit 1", "Exit 2", 1)
	if r := run(t, m, winrm.Powershell(script)); r.code != 1 {
		t.Errorf("got %v", r)
	}
	f.expectReported(t, "not modelled")
}

func TestPackerDownloadAndGuestCommands(t *testing.T) {
	m := newMachine(t, Options{})
	sdk := "github.com/hashicorp/packer-plugin-sdk"
	download := stringLiteral(t, moduleFile(t, sdk, "sdk-internals/communicator/winrm/communicator.go"), "ReadAllBytes")
	mkdir := stringLiteral(t, moduleFile(t, sdk, "guestexec/guest_commands.go"), "New-Item -ItemType directory")

	data := []byte("binary\x00\xff data")
	if err := m.FS().WriteFile(`C:\Windows\Temp\log.bin`, data); err != nil {
		t.Fatal(err)
	}
	r := run(t, m, winrm.Powershell(fmt.Sprintf(download, `C:\Windows\Temp\log.bin`)))
	expect(t, r, 0, base64.StdEncoding.EncodeToString(data)+"\r\n", "")

	// Not silenced: New-Item prints the new directory, and the module
	// loading writes its progress record.
	r = run(t, m, fmt.Sprintf(mkdir, `C:\ProgramData\winbake\logs`))
	if r.code != 0 || !strings.Contains(r.stdout, "    Directory: C:\\ProgramData\\winbake\r\n") || !strings.Contains(r.stdout, " logs\r\n") ||
		!strings.Contains(r.stderr, "Preparing modules for first use.") {
		t.Errorf("guest mkdir: %v", r)
	}
	if ok, dir := m.FS().exists(`C:\ProgramData\winbake\logs`); !ok || !dir {
		t.Error("guest mkdir did not create the directory")
	}
}
