package common

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/winbake/packer-plugin-winbake/internal/installmedia"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/testing/mediatest"
)

func stepState(t *testing.T, isoPath string) *multistep.BasicStateBag {
	state := new(multistep.BasicStateBag)
	state.Put("ui", packersdk.TestUi(t))
	state.Put("iso_path", isoPath)
	return state
}

func TestStepCheckInstallImageFindsImage(t *testing.T) {
	iso := mediatest.InstallISO(t, mediatest.Server2022)
	state := stepState(t, iso)
	step := &StepCheckInstallImage{ImageName: "Windows Server 2022 SERVERDATACENTERCORE"}
	if action := step.Run(context.Background(), state); action != multistep.ActionContinue {
		t.Fatalf("step halted: %v", state.Get("error"))
	}
	image := state.Get(StateInstallImage).(installmedia.Image)
	if image.Index != 3 || image.Version.Build != 20348 || image.Arch != "amd64" || image.InstallationType != "Server Core" {
		t.Fatalf("image = %+v, want index 3, build 20348, amd64, Server Core", image)
	}
}

// A name that is not on the ISO stops the build before any VM starts, and
// the error lists what the ISO offers.
func TestStepCheckInstallImageRejectsUnknownName(t *testing.T) {
	iso := mediatest.InstallISO(t, mediatest.Server2022)
	state := stepState(t, iso)
	step := &StepCheckInstallImage{ImageName: "Windows Server 2022 SERVERDATACENTER (Desktop Experience)"}
	if action := step.Run(context.Background(), state); action != multistep.ActionHalt {
		t.Fatal("step continued with an image name that is not on the ISO")
	}
	msg := state.Get("error").(error).Error()
	for _, want := range []string{"image_name", `"Windows Server 2022 SERVERSTANDARDCORE"`, `"Windows Server 2022 SERVERDATACENTER"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %s", msg, want)
		}
	}
	if _, ok := state.GetOk(StateInstallImage); ok {
		t.Error("an install image was recorded although none matched")
	}
}

func TestStepCheckInstallImageRejectsISOWithoutWindows(t *testing.T) {
	readme := filepath.Join(t.TempDir(), "README.TXT")
	if err := os.WriteFile(readme, []byte("not a Windows ISO\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	iso := mediatest.ISO(t, "DATA", map[string]string{"README.TXT": readme})
	state := stepState(t, iso)
	step := &StepCheckInstallImage{ImageName: "Windows 11 Pro"}
	if action := step.Run(context.Background(), state); action != multistep.ActionHalt {
		t.Fatal("step continued on an ISO without install.wim")
	}
	if msg := state.Get("error").(error).Error(); !strings.Contains(msg, "install.wim") {
		t.Errorf("error %q does not say install.wim is missing", msg)
	}
}

// unattendStepFixture prepares configs as a builder would and puts the
// checked image in state.
func unattendStepFixture(t *testing.T, firmware string, media MediaConfig, images []mediatest.Image, imageName string) (*StepCreateUnattendMedia, *multistep.BasicStateBag, *communicator.Config) {
	t.Helper()
	unattendConfig := UnattendConfig{ImageName: imageName}
	comm := &communicator.Config{Type: "winrm"}
	if errs := prepareUnattend(&unattendConfig, comm, firmware, unattendTestDisk); len(errs) != 0 {
		t.Fatalf("unattend config: %v", errs)
	}
	if errs := media.Prepare(&interpolate.Context{}, firmware); len(errs) != 0 {
		t.Fatalf("media config: %v", errs)
	}
	state := stepState(t, mediatest.InstallISO(t, images))
	check := &StepCheckInstallImage{ImageName: imageName}
	if action := check.Run(context.Background(), state); action != multistep.ActionContinue {
		t.Fatalf("checking the image: %v", state.Get("error"))
	}
	return &StepCreateUnattendMedia{Unattend: &unattendConfig, Media: &media, Firmware: firmware}, state, comm
}

func TestStepCreateUnattendMediaCD(t *testing.T) {
	extra := filepath.Join(t.TempDir(), "setup.ps1")
	if err := os.WriteFile(extra, []byte("Write-Output ready\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	media := MediaConfig{VirtioWinISOURL: "testdata/virtio-win.iso", VirtioWinISOChecksum: "none"}
	media.CDFiles = []string{extra}
	// Lower case on purpose: the answer file must carry the WIM's spelling.
	step, state, comm := unattendStepFixture(t, qemuvm.FirmwareUEFI, media, mediatest.Server2025, "windows server 2025 serverdatacenter")

	if action := step.Run(context.Background(), state); action != multistep.ActionContinue {
		t.Fatalf("step halted: %v", state.Get("error"))
	}
	cdPath := state.Get("cd_path").(string)
	volume := string(mediatest.Run(t, "xorriso", "xorriso", "-indev", cdPath, "-pvd_info"))
	if !strings.Contains(volume, "Volume Id    : WINBAKE") {
		t.Errorf("CD volume is not labelled WINBAKE:\n%s", volume)
	}
	answer := string(mediatest.ExtractISOFile(t, cdPath, UnattendFileName))
	for _, want := range []string{
		"<Value>Windows Server 2025 SERVERDATACENTER</Value>",
		`:\viostor\2k25\amd64</Path>`,
		`:\NetKVM\2k25\amd64</Path>`,
		"<Type>EFI</Type>",
	} {
		if !strings.Contains(answer, want) {
			t.Errorf("answer file lacks %s", want)
		}
	}
	if strings.Contains(answer, comm.WinRMPassword) {
		t.Error("the build password stands in the answer file in plain text")
	}
	if got := string(mediatest.ExtractISOFile(t, cdPath, "setup.ps1")); got != "Write-Output ready\n" {
		t.Errorf("cd_files content on the CD = %q", got)
	}

	step.Cleanup(state)
	if _, err := os.Stat(cdPath); !os.IsNotExist(err) {
		t.Errorf("cleanup left the CD image %s behind (stat: %v)", cdPath, err)
	}
}

func TestStepCreateUnattendMediaFloppyWithoutVirtio(t *testing.T) {
	media := MediaConfig{UnattendMedia: UnattendMediaFloppy}
	step, state, _ := unattendStepFixture(t, qemuvm.FirmwareBIOS, media, mediatest.Server2022, "Windows Server 2022 SERVERSTANDARDCORE")

	if action := step.Run(context.Background(), state); action != multistep.ActionContinue {
		t.Fatalf("step halted: %v", state.Get("error"))
	}
	floppy := state.Get("floppy_path").(string)
	if _, ok := state.GetOk("cd_path"); ok {
		t.Error("a CD was made although unattend_media is floppy")
	}
	mcopy, err := exec.LookPath("mcopy")
	if err != nil {
		t.Fatal("mcopy is not installed: apt-get install -y mtools (make deps does this)")
	}
	out, err := exec.Command(mcopy, "-n", "-i", floppy, "::"+UnattendFileName, "-").Output()
	if err != nil {
		t.Fatalf("reading %s from the floppy: %v", UnattendFileName, err)
	}
	answer := string(out)
	if !strings.Contains(answer, "<Value>Windows Server 2022 SERVERSTANDARDCORE</Value>") {
		t.Error("answer file on the floppy does not select the image")
	}
	if strings.Contains(answer, "PnpCustomizationsWinPE") {
		t.Error("virtio driver paths written although no virtio-win ISO is configured")
	}
	if !strings.Contains(answer, "<Active>true</Active>") {
		t.Error("BIOS layout lacks an active partition")
	}

	step.Cleanup(state)
	if _, err := os.Stat(floppy); !os.IsNotExist(err) {
		t.Errorf("cleanup left the floppy image %s behind (stat: %v)", floppy, err)
	}
}

// An image too old for any virtio-win driver folder fails with the field
// that asked for virtio drivers, before a medium is made.
func TestStepCreateUnattendMediaRejectsImageWithoutVirtioFolder(t *testing.T) {
	old := []mediatest.Image{{Name: "Windows Server 2012 R2 SERVERSTANDARD", EditionID: "ServerStandard", InstallationType: "Server", Arch: 9, Build: 9600}}
	media := MediaConfig{VirtioWinISOURL: "testdata/virtio-win.iso", VirtioWinISOChecksum: "none"}
	step, state, _ := unattendStepFixture(t, qemuvm.FirmwareBIOS, media, old, old[0].Name)
	if action := step.Run(context.Background(), state); action != multistep.ActionHalt {
		t.Fatal("step continued without a virtio driver folder for the image")
	}
	if msg := state.Get("error").(error).Error(); !strings.HasPrefix(msg, "virtio_win_iso_url:") || !strings.Contains(msg, "9600") {
		t.Errorf("error %q should name virtio_win_iso_url and the build", msg)
	}
	if _, ok := state.GetOk("cd_path"); ok {
		t.Error("a CD was made although the step failed")
	}
}
