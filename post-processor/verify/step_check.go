package verify

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
	"github.com/winbake/packer-plugin-winbake/internal/winrmsec"
)

// stepCheck logs on over WinRM with NTLM and encrypted messages (Windows'
// defaults), probes what WinRM accepts from the wire, runs the checks,
// saves the report beside the artifact and shows it; any failed check
// halts, so that no later post-processor publishes the image.
//
// Uses state: "ui", stateInput, stateInstance, stateServer, StateHostPort,
// stateHTTPSHostPort.
// Produces state: stateReport.
type stepCheck struct {
	Config    *Config
	Comm      *communicator.Config
	ReportDir string
}

func (s *stepCheck) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	inst := state.Get(stateInstance).(*instance)
	in := state.Get(stateInput).(*inputImage)
	port, _ := state.Get(qemuvm.StateHostPort).(int)
	httpsPort, _ := state.Get(stateHTTPSHostPort).(int)
	serial, _ := os.ReadFile(filepath.Join(inst.Dir, qemuvm.SerialLogName))
	k := &checker{Config: s.Config, Inst: inst, Serial: readSerial(string(serial)), SerialText: string(serial), Build: in.Manifest.WinRM}
	k.Server, _ = state.Get(stateServer).(*metadataServer)

	comm := *s.Comm
	if !*s.Config.InjectAdminPassword {
		// cloudbase-init generated the password and posted it
		// encrypted: log on with it, as its user would after nova
		// get-password.
		pw, err := k.postedPassword()
		if err != nil {
			k.WinRMErr = err
			k.NoPassword = !*s.Config.MetadataService
			k.Door = probeDoor(ctx, port, httpsPort, s.Config.Username, "")
			return s.report(ctx, state, k)
		}
		packersdk.LogSecretFilter.Set(pw)
		comm.WinRMPassword = pw
	}
	// Windows' defaults accept NTLM with encrypted messages on the HTTP
	// listener: the logon the checks run over.
	connect := &qemuvm.StepConnectWinRM{
		Config:      &comm,
		Transporter: winrmsec.SealedNTLM(comm.WinRMUser, comm.WinRMPassword),
		Host:        func(multistep.StateBag) (string, error) { return "127.0.0.1", nil },
		WinRMPort:   func(multistep.StateBag) (int, error) { return port, nil },
	}
	// A failed logon is a check result, not the end of the run.
	sub := new(multistep.BasicStateBag)
	sub.Put("ui", ui)
	if connect.Run(ctx, sub) == multistep.ActionContinue {
		k.Comm, _ = sub.Get("communicator").(packersdk.Communicator)
	} else if err, ok := sub.GetOk("error"); ok {
		k.WinRMErr = err.(error)
	} else {
		k.WinRMErr = fmt.Errorf("no logon within winrm_timeout (%s)", s.Comm.WinRMTimeout)
	}
	defer connect.Cleanup(sub)
	if ctx.Err() != nil {
		return steps.Halt(state, ui, ctx.Err())
	}
	k.Door = probeDoor(ctx, port, httpsPort, s.Config.Username, comm.WinRMPassword)
	return s.report(ctx, state, k)
}

// report runs the checks, saves the report and shows it.
func (s *stepCheck) report(ctx context.Context, state multistep.StateBag, k *checker) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	in := state.Get(stateInput).(*inputImage)
	inst := state.Get(stateInstance).(*instance)
	serial, _ := os.ReadFile(filepath.Join(inst.Dir, qemuvm.SerialLogName))
	report := &Report{Image: in.ManifestPath, Mode: s.Config.Mode, Instance: inst.Metadata.UUID, Hostname: s.Config.Hostname}
	k.Run(ctx, report)
	checkSecureBootCertificates(in, report)
	report.Finished = time.Now().UTC()
	report.Passed = len(report.Failed()) == 0
	state.Put(stateReport, report)

	dir := s.ReportDir
	if dir == "" {
		dir = in.Dir
	}
	jsonPath, _, err := report.Save(dir, in.Name)
	if err != nil {
		return steps.Halt(state, ui, fmt.Errorf("report_directory: writing the report: %w", err))
	}
	// The console log is evidence too; it holds no password (cloudbase-init
	// does not log them).
	_ = os.WriteFile(filepath.Join(dir, in.Name+".verify-serial.log"), serial, 0o644)
	for _, line := range strings.Split(strings.TrimRight(report.Table(), "\n"), "\n") {
		ui.Message(line)
	}
	ui.Say("Report saved to " + jsonPath)
	if !report.Passed {
		return steps.Halt(state, ui, fmt.Errorf("winbake-verify: %d check(s) failed: %s; see %s", len(report.Failed()), strings.Join(report.Failed(), ", "), jsonPath))
	}
	return multistep.ActionContinue
}

func (s *stepCheck) Cleanup(multistep.StateBag) {}
