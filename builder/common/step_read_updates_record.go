package common

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/guestcontract"
	"github.com/winbake/packer-plugin-winbake/internal/image"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// StepReadUpdatesRecord reads the record winbake-updates leaves in the
// image (guestcontract.UpdatesRecordPath) through the communicator, before the guest
// shuts down, so that the build manifest lists the update packages. An
// image without the record (no winbake-updates in the build) gets no
// `updates` in the manifest; a record that exists but cannot be read or
// parsed fails the build, naming the file.
//
// Uses state: "ui", "communicator" (optional: without one, or with
// communicator "none", nothing is read).
// Produces state: StateUpdates (only when there is a record).
type StepReadUpdatesRecord struct {
	// CommunicatorType is the build's communicator type; "none" reads
	// nothing.
	CommunicatorType string
}

// updatesRecordMissing is the exit code of guest/updates-record.ps1 when
// the image has no record.
const updatesRecordMissing = 3

func (s *StepReadUpdatesRecord) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	comm, ok := state.Get("communicator").(packersdk.Communicator)
	if !ok || comm == nil || s.CommunicatorType == "none" {
		return multistep.ActionContinue
	}
	list, found, err := readUpdatesRecord(ctx, comm)
	if err != nil {
		err = fmt.Errorf("reading the winbake-updates record %s for the manifest: %w", guestcontract.UpdatesRecordPath, err)
		return steps.Halt(state, ui, err)
	}
	if !found {
		ui.Say(fmt.Sprintf("No winbake-updates record (%s) in the image: the manifest lists no updates", guestcontract.UpdatesRecordPath))
		return multistep.ActionContinue
	}
	ui.Say(fmt.Sprintf("The winbake-updates record lists %d package(s); they go into the manifest", len(list)))
	state.Put(StateUpdates, list)
	return multistep.ActionContinue
}

func (s *StepReadUpdatesRecord) Cleanup(multistep.StateBag) {}

// readUpdatesRecord reads and parses the record; found is false when the
// guest has none.
func readUpdatesRecord(ctx context.Context, comm packersdk.Communicator) (list []image.ManifestUpdate, found bool, err error) {
	out, err := runGuestScript(ctx, comm, "updates-record.ps1", struct{ Path string }{guestcontract.UpdatesRecordPath})
	if err != nil {
		return nil, false, err
	}
	switch out.ExitStatus {
	case 0:
	case updatesRecordMissing:
		return nil, false, nil
	default:
		return nil, false, fmt.Errorf("PowerShell exited with %d: %s", out.ExitStatus, out.errorText())
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out.Stdout))
	if err != nil {
		return nil, false, fmt.Errorf("the guest's output is not base64: %w", err)
	}
	var rec guestcontract.UpdatesRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, false, fmt.Errorf("not a winbake-updates record: %w", err)
	}
	list = []image.ManifestUpdate{}
	for _, p := range rec.Packages {
		list = append(list, image.ManifestUpdate{KB: p.KB, File: p.File, Result: p.Result})
	}
	return list, true, nil
}
