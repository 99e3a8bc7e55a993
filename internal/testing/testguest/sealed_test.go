package testguest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/masterzen/winrm"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman"
)

// NTLM message encryption over HTTP ([MS-WSMV] 2.2.9.1.1) against the whole
// stand-in, with the clients users have: masterzen's winrm.NewEncryption
// and pywinrm (what Ansible's winrm connection runs), on a listener with
// Windows' default AllowUnencrypted=false and with AllowUnencrypted=true.

// sealedTrace records which operations travelled sealed.
type sealedTrace struct {
	mu      sync.Mutex
	sealed  map[wsman.Op]int
	clear   []string
	setups  int
	refused int
}

func (s *sealedTrace) add(e wsman.Exchange) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sealed == nil {
		s.sealed = map[wsman.Op]int{}
	}
	switch {
	case e.ContextSetup:
		s.setups++
	case e.Op == wsman.OpUnknown:
	case e.Sealed:
		s.sealed[e.Op]++
	default:
		s.clear = append(s.clear, fmt.Sprintf("%v (HTTP %d)", e.Op, e.Status))
	}
	if e.Status == 400 {
		s.refused++
	}
}

// check closes the guest first: the server records an exchange after
// sending its answer, so the last one may not be recorded yet when the
// client has it.
func (s *sealedTrace) check(t *testing.T, g *Guest, commands int) {
	t.Helper()
	if err := g.Close(); err != nil {
		t.Error(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.clear) != 0 {
		t.Errorf("operations served unsealed: %v", s.clear)
	}
	if s.sealed[wsman.OpCreate] != commands || s.sealed[wsman.OpCommand] != commands || s.sealed[wsman.OpReceive] < commands || s.sealed[wsman.OpDelete] != commands {
		t.Errorf("sealed operations for %d commands: %v", commands, s.sealed)
	}
	if s.setups == 0 || s.refused != 0 {
		t.Errorf("%d handshakes completed by an empty POST, %d sealed requests refused", s.setups, s.refused)
	}
}

func TestMasterzenSealedNTLM(t *testing.T) {
	t.Parallel()
	for _, allowUnencrypted := range []bool{false, true} {
		t.Run(fmt.Sprintf("AllowUnencrypted=%v", allowUnencrypted), func(t *testing.T) {
			t.Parallel()
			var tr sealedTrace
			g := StartForTest(t, Options{ComputerName: "SEALED-01", QuietModuleLoad: true,
				Server: wsman.Options{RejectUnencrypted: !allowUnencrypted, Trace: tr.add}})
			h, p := g.HostPort()
			user, pass := g.Credentials()
			params := winrm.NewParameters("PT5S", "en-US", 153600)
			params.TransportDecorator = func() winrm.Transporter {
				e, err := winrm.NewEncryption("ntlm")
				if err != nil {
					t.Fatal(err)
				}
				return e
			}
			c, err := winrm.NewClientWithParameters(&winrm.Endpoint{Host: h, Port: p, Timeout: 30 * time.Second}, user, pass, params)
			if err != nil {
				t.Fatal(err)
			}
			if r := mustRun(t, c, "hostname"); r.stdout != "SEALED-01\r\n" {
				t.Errorf("hostname: %v", r)
			}
			r := runCmd(t, c, winrm.Powershell(`Write-Output "sealed $env:COMPUTERNAME"; exit 3`), 20*time.Second)
			if r.err != nil || r.code != 3 || r.stdout != "sealed SEALED-01\r\n" {
				t.Errorf("PowerShell: %v", r)
			}
			tr.check(t, g, 2)
		})
	}
}

// debianPython is the interpreter Debian's python3-winrm is installed for
// (a python3 earlier on PATH, e.g. pyenv's, does not see it).
const debianPython = "/usr/bin/python3"

// TestPywinrmSealedNTLM runs pywinrm (Debian's python3-winrm, 0.3.0) with
// transport='ntlm' and message_encryption='always', as Ansible users do.
func TestPywinrmSealedNTLM(t *testing.T) {
	t.Parallel()
	if out, err := exec.Command(debianPython, "-c", "import winrm").CombinedOutput(); err != nil {
		t.Fatalf("pywinrm is not installed (python3-winrm: make deps): %v\n%s", err, out)
	}
	for _, allowUnencrypted := range []bool{false, true} {
		t.Run(fmt.Sprintf("AllowUnencrypted=%v", allowUnencrypted), func(t *testing.T) {
			t.Parallel()
			var tr sealedTrace
			g := StartForTest(t, Options{ComputerName: "SEALED-02", QuietModuleLoad: true,
				Server: wsman.Options{RejectUnencrypted: !allowUnencrypted, Trace: tr.add}})
			user, pass := g.Credentials()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, debianPython, "testdata/pywinrm_run.py", "http://"+g.Addr()+"/wsman", user, pass, "ntlm", "always",
				"cmd:echo sealed",
				"cmd:hostname",
				`ps:Write-Output "ps $env:COMPUTERNAME"`,
				`ps:if ($PSVersionTable.PSVersion.Major -lt 5) { exit 1 }; "$($PSVersionTable.PSVersion) $($Host.Name)"`)
			cmd.Env = append(os.Environ(), "OPENSSL_CONF=testdata/openssl-legacy.cnf")
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("pywinrm: %v\n%s", err, stderr.String())
			}
			var got struct {
				Encrypted bool `json:"encrypted"`
				Results   []struct {
					StatusCode int    `json:"status_code"`
					StdOut     string `json:"std_out"`
					StdErr     string `json:"std_err"`
				} `json:"results"`
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("pywinrm output %q: %v", out, err)
			}
			want := []string{"sealed\r\n", "SEALED-02\r\n", "ps SEALED-02\r\n", "5.1.20348.2700 ConsoleHost\r\n"}
			if !got.Encrypted || len(got.Results) != len(want) {
				t.Fatalf("pywinrm: %+v", got)
			}
			for i, r := range got.Results {
				if r.StatusCode != 0 || r.StdOut != want[i] || r.StdErr != "" {
					t.Errorf("command %d: %+v, want stdout %q", i, r, want[i])
				}
			}
			tr.check(t, g, len(want))
		})
	}
}
