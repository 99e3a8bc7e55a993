package winsim

import (
	"bytes"
	"errors"
	"fmt"
)

// Programs that change the WinRM configuration (WinRMConfig), at their
// System32 paths: winrm.cmd (a batch file running winrm.vbs), netsh.exe,
// certutil.exe.
const (
	winrmCmdPath = `C:\Windows\System32\winrm.cmd`
	netshPath    = `C:\Windows\System32\netsh.exe`
	certutilPath = `C:\Windows\System32\certutil.exe`
)

// WinRM runs f on the machine's WinRM configuration (Options.WinRM) and,
// when f changed it without error, calls Options.WinRMChanged, as the
// WinRM service and the firewall apply a change at once.
func (m *Machine) WinRM(f func(c *WinRMConfig) error) error {
	if m.opts.WinRM == nil {
		return errNoWinRMConfig
	}
	m.winrmMu.Lock()
	before := fmt.Sprintf("%+v", *m.opts.WinRM)
	err := f(m.opts.WinRM)
	changed := fmt.Sprintf("%+v", *m.opts.WinRM) != before
	m.winrmMu.Unlock()
	if changed && m.opts.WinRMChanged != nil {
		m.opts.WinRMChanged()
	}
	return err
}

// runWinRMTool runs one of the WinRM programs on the configuration;
// what the model does not cover is reported and answered as the tool's
// failure.
func (m *Machine) runWinRMTool(p *proc, name string, run func(c *WinRMConfig, out, errw *bytes.Buffer) (uint32, error)) uint32 {
	var out, errw bytes.Buffer
	var code uint32
	err := m.WinRM(func(c *WinRMConfig) error {
		var err error
		code, err = run(c, &out, &errw)
		return err
	})
	p.print(p.stdout, out.String())
	p.print(p.stderr, errw.String())
	if err != nil {
		var nm *NotModelled
		if errors.As(err, &nm) || errors.Is(err, errNoWinRMConfig) {
			m.unsupportedf("%s %s: %v", name, p.cmdline, err)
			p.print(p.stderr, "The stand-in does not model this: "+err.Error()+"\r\n")
			return 1
		}
		p.print(p.stderr, err.Error()+"\r\n")
		return 1
	}
	return code
}

func (m *Machine) runWinrmCmd(p *proc) uint32 {
	return m.runWinRMTool(p, "winrm", func(c *WinRMConfig, out, _ *bytes.Buffer) (uint32, error) {
		return c.RunWinrm(p.args, out)
	})
}

func (m *Machine) runNetsh(p *proc) uint32 {
	return m.runWinRMTool(p, "netsh", func(c *WinRMConfig, out, _ *bytes.Buffer) (uint32, error) {
		return c.RunNetsh(p.args, out)
	})
}

func (m *Machine) runCertutil(p *proc) uint32 {
	return m.runWinRMTool(p, "certutil", func(c *WinRMConfig, out, errw *bytes.Buffer) (uint32, error) {
		return c.RunCertutil(p.args, out, errw, func(path string) ([]byte, error) { return p.files.ReadFile(path) })
	})
}
