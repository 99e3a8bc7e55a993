package winrmsec

import (
	"context"
	"fmt"
	"strings"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/guestcmd"
)

// Leftovers looks in the guest, over comm, for what a build adds for WinRM
// and an image must not keep: the firewall rules FirewallRuleHTTP and
// FirewallRuleHTTPS (`netsh advfirewall firewall show rule`, which prints
// "No rules match the specified criteria." and exits 1 when there is
// none), and the certificate with thumbprint in LocalMachine\My (Test-Path
// on PowerShell's Cert: drive; skipped when thumbprint is ""). It returns
// what it found, and an error when a command's answer means neither.
func Leftovers(ctx context.Context, comm packersdk.Communicator, thumbprint string) (found []string, checked []string, err error) {
	for _, rule := range []string{FirewallRuleHTTP, FirewallRuleHTTPS} {
		out, code, err := run(ctx, comm, `netsh advfirewall firewall show rule name="`+rule+`"`)
		switch {
		case err != nil:
			return found, checked, fmt.Errorf("netsh show rule %q: %w", rule, err)
		case code == 1 && strings.Contains(out, "No rules match the specified criteria."):
			checked = append(checked, "firewall rule "+rule)
		case code == 0 && strings.Contains(out, "Rule Name:"):
			found = append(found, "the firewall rule "+rule)
		default:
			return found, checked, fmt.Errorf("netsh show rule %q: exit %d: %s", rule, code, strings.TrimSpace(out))
		}
	}
	if thumbprint != "" {
		// Progress silenced: Windows PowerShell otherwise writes "Preparing
		// modules for first use." as CLIXML on stderr.
		out, code, err := run(ctx, comm, `powershell.exe -NoProfile -NonInteractive -Command "$ProgressPreference = 'SilentlyContinue'; Test-Path Cert:\LocalMachine\My\`+thumbprint+`"`)
		switch answer := strings.TrimSpace(out); {
		case err != nil:
			return found, checked, fmt.Errorf("Test-Path of the certificate: %w", err)
		case code == 0 && answer == "False":
			checked = append(checked, "certificate "+thumbprint)
		case code == 0 && answer == "True":
			found = append(found, "the build certificate "+thumbprint+` in Cert:\LocalMachine\My`)
		default:
			return found, checked, fmt.Errorf("Test-Path of the certificate: exit %d: %s", code, answer)
		}
	}
	return found, checked, nil
}

// run runs a command and returns its standard output (with the error
// output appended when it exits non-zero, for the message).
func run(ctx context.Context, comm packersdk.Communicator, command string) (string, int, error) {
	var out, errOut guestcmd.Output
	cmd := &packersdk.RemoteCmd{Command: command, Stdout: &out, Stderr: &errOut}
	if err := comm.Start(ctx, cmd); err != nil {
		return out.String(), -1, err
	}
	code := cmd.Wait()
	if code != 0 {
		return out.String() + errOut.String(), code, nil
	}
	return out.String(), code, nil
}
