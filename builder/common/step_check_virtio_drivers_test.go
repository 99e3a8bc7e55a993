package common

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/testing/mediatest"
)

// virtioISO masters an ISO laid out like virtio-win's, with an .inf in each
// <driver>/<folder>/amd64 directory for the given folders.
func virtioISO(t *testing.T, folders ...string) string {
	t.Helper()
	inf := filepath.Join(t.TempDir(), "driver.inf")
	if err := os.WriteFile(inf, []byte("[Version]\r\nSignature=\"$WINDOWS NT$\"\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, driver := range VirtioSetupDrivers {
		for _, folder := range folders {
			files[driver+"/"+folder+"/amd64/"+strings.ToLower(driver)+".inf"] = inf
		}
	}
	return mediatest.ISO(t, "virtio-win-0.1.271", files, "-J", "-R")
}

// checkedImageState runs StepCheckInstallImage on an install ISO with images.
func checkedImageState(t *testing.T, images []mediatest.Image, name string) *multistep.BasicStateBag {
	t.Helper()
	state := stepState(t, mediatest.InstallISO(t, images))
	if action := (&StepCheckInstallImage{ImageName: name}).Run(context.Background(), state); action != multistep.ActionContinue {
		t.Fatalf("checking the install image: %v", state.Get("error"))
	}
	return state
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// The virtio-win ISO is fetched through the SDK's download step, checksum
// verified, then checked for the image's driver folders.
func TestVirtioDownloadAndCheck(t *testing.T) {
	t.Setenv("PACKER_CACHE_DIR", t.TempDir())
	iso := virtioISO(t, "2k19", "2k22")
	media := MediaConfig{VirtioWinISOURL: iso, VirtioWinISOChecksum: "sha256:" + sha256File(t, iso)}
	state := checkedImageState(t, mediatest.Server2022, "Windows Server 2022 SERVERDATACENTER")

	download := media.VirtioDownloadStep()
	if action := download.Run(context.Background(), state); action != multistep.ActionContinue {
		t.Fatalf("download halted: %v", state.Get("error"))
	}
	defer download.Cleanup(state)
	if got := state.Get(qemuvm.StateVirtioWinISO).(string); sha256File(t, got) != sha256File(t, iso) {
		t.Fatalf("downloaded virtio-win ISO %s differs from the source", got)
	}
	if action := (&StepCheckVirtioDrivers{}).Run(context.Background(), state); action != multistep.ActionContinue {
		t.Fatalf("driver check halted: %v", state.Get("error"))
	}
}

func TestVirtioDownloadRejectsWrongChecksum(t *testing.T) {
	t.Setenv("PACKER_CACHE_DIR", t.TempDir())
	iso := virtioISO(t, "2k22")
	media := MediaConfig{VirtioWinISOURL: iso, VirtioWinISOChecksum: "sha256:" + strings.Repeat("0", 64)}
	state := checkedImageState(t, mediatest.Server2022, "Windows Server 2022 SERVERDATACENTER")
	if action := media.VirtioDownloadStep().Run(context.Background(), state); action != multistep.ActionHalt {
		t.Fatal("download accepted a virtio-win ISO with the wrong checksum")
	}
}

func TestVirtioDownloadStepOnlyWhenConfigured(t *testing.T) {
	if step := (&MediaConfig{}).VirtioDownloadStep(); step != nil {
		t.Fatalf("a download step (%T) without virtio_win_iso_url", step)
	}
}

// An old virtio-win release without the image's folder is refused before
// boot, naming what is missing and what the ISO has.
func TestStepCheckVirtioDriversRejectsMissingFolder(t *testing.T) {
	state := checkedImageState(t, mediatest.Server2025, "Windows Server 2025 SERVERDATACENTER")
	state.Put(qemuvm.StateVirtioWinISO, virtioISO(t, "2k19", "2k22"))
	if action := (&StepCheckVirtioDrivers{}).Run(context.Background(), state); action != multistep.ActionHalt {
		t.Fatal("driver check passed although the ISO has no 2k25 folder")
	}
	msg := state.Get("error").(error).Error()
	for _, want := range []string{"virtio_win_iso_url:", "viostor/2k25/amd64", "NetKVM/2k25/amd64", "2k19/", "2k22/"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %s", msg, want)
		}
	}
}
