package common

import (
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/winbake/packer-plugin-winbake/internal/image"
)

// State keys of what the build learns about the guest for the manifest.
const (
	// StateUpdates is the []image.ManifestUpdate read from the winbake-updates
	// record in the guest; absent when the image has no record.
	StateUpdates = "manifest_updates"
	// StateQemuGuestAgent is a bool: whether the QEMU guest agent service
	// is installed in the guest; absent when it was not checked.
	StateQemuGuestAgent = "manifest_qemu_guest_agent"
)

// ManifestISOChecksum is the manifest's `iso_checksum`: the install ISO's
// checksum as StepDownload verified it (`type:value`, lower case), "" when
// it was not checked (`iso_checksum = "none"`). A build from source_image
// carries the source manifest's value.
func ManifestISOChecksum(isoChecksum string, source *SourceImageConfig) string {
	if source != nil && source.Enabled() {
		if m := source.Manifest(); m != nil {
			return m.ISOChecksum
		}
		return ""
	}
	s := strings.TrimSpace(isoChecksum)
	if s == "" || strings.EqualFold(s, "none") {
		return ""
	}
	return strings.ToLower(s)
}

// ManifestGuestFacts returns what StepCheckGuestAgent and
// StepReadUpdatesRecord learnt from the guest: nil for what was not
// checked or not found.
func ManifestGuestFacts(state multistep.StateBag) (qemuGuestAgent *bool, updates []image.ManifestUpdate) {
	if v, ok := state.Get(StateQemuGuestAgent).(bool); ok {
		qemuGuestAgent = &v
	}
	updates, _ = state.Get(StateUpdates).([]image.ManifestUpdate)
	return qemuGuestAgent, updates
}
