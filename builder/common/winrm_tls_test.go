package common

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/testing/mediatest"
	"github.com/winbake/packer-plugin-winbake/internal/winrmsec"
)

// A guest on a network: the answer CD carries the build certificate as
// PKCS#12 (AES for Server 2022) with the password only in the answer
// file's import command, the communicator trusts that certificate only,
// the manifest record holds the certificate without the key, and nothing
// of it survives Cleanup.
func TestStepPrepareWinRMHTTPSMedium(t *testing.T) {
	unattendConfig := UnattendConfig{ImageName: "Windows Server 2022 SERVERSTANDARDCORE"}
	comm := &communicator.Config{Type: "winrm", WinRM: communicator.WinRM{WinRMInsecure: true, WinRMNoProxy: true}}
	errs := unattendConfig.Prepare(&interpolate.Context{}, qemuvm.FirmwareBIOS, unattendTestDisk)
	errs = append(errs, unattendConfig.PrepareCredentials(comm)...)
	errs = append(errs, unattendConfig.PrepareWinRMTransport(comm, false)...)
	media := MediaConfig{}
	errs = append(errs, media.Prepare(&interpolate.Context{}, qemuvm.FirmwareBIOS)...)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	state := stepState(t, mediatest.InstallISO(t, mediatest.Server2022))
	steps := []multistep.Step{
		&StepCheckInstallImage{ImageName: unattendConfig.ImageName},
		&StepPrepareWinRM{Unattend: &unattendConfig, Comm: comm},
		&StepCreateUnattendMedia{Unattend: &unattendConfig, Media: &media, Firmware: qemuvm.FirmwareBIOS},
	}
	for _, s := range steps {
		if action := s.Run(context.Background(), state); action != multistep.ActionContinue {
			t.Fatalf("%T halted: %v", s, state.Get("error"))
		}
	}
	rec := state.Get(StateBuildWinRM).(winrmsec.BuildWinRM)
	if err := rec.Check(); err != nil || !rec.HTTPS() || rec.Port != 5986 || rec.FirewallRule != winrmsec.FirewallRuleHTTPS || !rec.Basic {
		t.Errorf("record %+v: %v", rec, err)
	}
	if strings.Contains(rec.Certificate, "PRIVATE") {
		t.Error("the manifest record holds a private key")
	}
	// StepConnectWinRM installs the pinned transport the state carries.
	if _, ok := state.Get(qemuvm.StateWinRMTransporter).(qemuvm.WinRMTransporter); !ok || !comm.WinRMUseSSL {
		t.Errorf("communicator: pinned transporter in the state %t, winrm_use_ssl %t", ok, comm.WinRMUseSSL)
	}

	cdPath := state.Get("cd_path").(string)
	answer := string(mediatest.ExtractISOFile(t, cdPath, UnattendFileName))
	pfx := mediatest.ExtractISOFile(t, cdPath, winrmsec.PFXFileName)
	i := strings.Index(answer, "certutil -f -p ")
	if i < 0 {
		t.Fatalf("the answer file does not import the certificate:\n%s", answer)
	}
	password := strings.Fields(answer[i+len("certutil -f -p "):])[0]
	_, cert, err := pkcs12.Decode(pfx, password)
	if err != nil || winrmsec.Thumbprint(cert.Raw) != rec.Thumbprint {
		t.Errorf("the medium's PKCS#12 file (password from the answer file): %v", err)
	}
	if !strings.Contains(answer, `CertificateThumbprint=&#34;`+rec.Thumbprint+`&#34;`) || strings.Contains(answer, "AllowUnencrypted") {
		t.Error("the answer file does not create the HTTPS listener with the certificate, or allows unencrypted messages")
	}

	for i := len(steps) - 1; i >= 0; i-- {
		steps[i].Cleanup(state)
	}
	if _, err := os.Stat(cdPath); !os.IsNotExist(err) {
		t.Errorf("the answer CD %s is left (%v)", cdPath, err)
	}
	if state.Get(qemuvm.StateWinRMTransporter) != nil {
		t.Error("the pinned transport outlives the build")
	}
	if state.Get(stateWinRMCertificate) != nil || state.Get(stateWinRMPFXPassword) != nil {
		t.Error("the certificate or its PKCS#12 password stays in the state")
	}
}

// A guest behind the loopback forward keeps HTTP: no certificate, no
// file, the legacy record.
func TestStepPrepareWinRMHTTP(t *testing.T) {
	c := UnattendConfig{}
	comm := &communicator.Config{Type: "winrm"}
	c.PrepareWinRMTransport(comm, true)
	state := stepState(t, "")
	s := &StepPrepareWinRM{Unattend: &c, Comm: comm}
	if s.Run(context.Background(), state) != multistep.ActionContinue {
		t.Fatal(state.Get("error"))
	}
	if rec := state.Get(StateBuildWinRM).(winrmsec.BuildWinRM); rec != winrmsec.LegacyBuildWinRM || comm.WinRMTransportDecorator != nil {
		t.Errorf("record %+v, decorator %v", rec, comm.WinRMTransportDecorator != nil)
	}
	if w, pfx, err := winrmMedium(state, 20348, false); err != nil || w.HTTPS || pfx != nil {
		t.Errorf("HTTP build puts WinRM files on the medium: %+v %d %v", w, len(pfx), err)
	}
}
