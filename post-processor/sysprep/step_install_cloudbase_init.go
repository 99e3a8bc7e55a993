package sysprep

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/guestcmd"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// Where the cloudbase-init MSI installs.
const (
	CloudbaseInitDir      = `C:\Program Files\Cloudbase Solutions\Cloudbase-Init`
	CloudbaseInitUnattend = CloudbaseInitDir + `\conf\Unattend.xml`
	guestTemp             = `C:\Windows\Temp`
	cloudbaseInstallLog   = guestTemp + `\cloudbase-init-install.log`
)

// stepInstallCloudbaseInit uploads the cloudbase-init MSI, installs it
// (logging to COM1, service as LocalSystem), writes cloudbase-init.conf and
// cloudbase-init-unattend.conf, and removes the MSI again. It does nothing
// without a cloudbase_init block.
//
// Uses state: "ui", "communicator", stateCloudbaseInitMSI.
// Produces state: stateCloudbaseInit.
type stepInstallCloudbaseInit struct {
	Config *CloudbaseInitConfig
}

// cloudbaseConf is the data of guest/cloudbase-init.conf.
type cloudbaseConf struct {
	*CloudbaseInitConfig
	Dir      string
	LogFile  string
	Unattend bool
	Options  []struct{ Key, Value string }
}

func (s *stepInstallCloudbaseInit) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	state.Put(stateCloudbaseInit, false)
	if s.Config == nil {
		return multistep.ActionContinue
	}
	ui := state.Get("ui").(packersdk.Ui)
	comm := communicatorOf(state)
	local := state.Get(stateCloudbaseInitMSI).(string)
	msi := guestTemp + `\` + filepath.Base(local)
	f, err := os.Open(local)
	if err != nil {
		return steps.Halt(state, ui, fmt.Errorf("cloudbase_init.msi: %w", err))
	}
	defer f.Close()
	ui.Say(fmt.Sprintf("Uploading %s to %s", local, msi))
	if err := guestcmd.Upload(ctx, comm, msi, f, nil, uploadTimeout, uploadLimit); err != nil {
		return steps.Halt(state, ui, fmt.Errorf("cloudbase_init.msi: uploading: %w", err))
	}
	args := fmt.Sprintf(`/i "%s" /qn /l*v "%s" LOGGINGSERIALPORTNAME=COM1 RUN_SERVICE_AS_LOCAL_SYSTEM=1`, msi, cloudbaseInstallLog)
	ui.Say("Installing cloudbase-init: msiexec " + args)
	if _, err := runScript(ctx, comm, "cloudbase-init-install.ps1", map[string]string{"Arguments": args}); err != nil {
		return steps.Halt(state, ui, fmt.Errorf("cloudbase_init.msi: the installation failed (see %s in the guest): %w", cloudbaseInstallLog, err))
	}
	if _, err := runScript(ctx, comm, "remove-file.ps1", map[string]string{"Path": msi}); err != nil {
		return steps.Halt(state, ui, fmt.Errorf("removing the uploaded MSI: %w", err))
	}
	for _, conf := range []struct {
		name     string
		unattend bool
	}{{"cloudbase-init.conf", false}, {"cloudbase-init-unattend.conf", true}} {
		text, err := CloudbaseInitConf(s.Config, conf.unattend)
		if err != nil {
			return steps.Halt(state, ui, err)
		}
		dst := CloudbaseInitDir + `\conf\` + conf.name
		if err := guestcmd.Upload(ctx, comm, dst, strings.NewReader(text), nil, uploadTimeout, uploadLimit); err != nil {
			return steps.Halt(state, ui, fmt.Errorf("writing %s: %w", dst, err))
		}
		ui.Say("Wrote " + dst)
	}
	state.Put(stateCloudbaseInit, true)
	return multistep.ActionContinue
}

func (s *stepInstallCloudbaseInit) Cleanup(multistep.StateBag) {}

// CloudbaseInitConf is the cloudbase-init.conf (unattend false) or
// cloudbase-init-unattend.conf (true) this post-processor writes for a
// prepared ci, with CRLF line ends. Both end in the [DEFAULT] section:
// MAAS's curtin hook appends its metadata options to them.
func CloudbaseInitConf(ci *CloudbaseInitConfig, unattend bool) (string, error) {
	name := "cloudbase-init.conf"
	if unattend {
		name = "cloudbase-init-unattend.conf"
	}
	data := cloudbaseConf{CloudbaseInitConfig: ci, Dir: CloudbaseInitDir, Unattend: unattend,
		LogFile: strings.TrimSuffix(name, ".conf") + ".log"}
	for k, v := range ci.Options {
		data.Options = append(data.Options, struct{ Key, Value string }{k, v})
	}
	sort.Slice(data.Options, func(i, j int) bool { return data.Options[i].Key < data.Options[j].Key })
	text, err := renderGuestFile("cloudbase-init.conf", data)
	if err != nil {
		return "", err
	}
	return strings.ReplaceAll(strings.TrimLeft(text, "\n"), "\n", "\r\n"), nil
}
