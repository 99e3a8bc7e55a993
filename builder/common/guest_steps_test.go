package common

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	sdkwinrm "github.com/hashicorp/packer-plugin-sdk/sdk-internals/communicator/winrm"

	"github.com/winbake/packer-plugin-winbake/internal/guestcontract"
	"github.com/winbake/packer-plugin-winbake/internal/image"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testio"
)

// guestState starts the stand-in Windows in-process behind its real WinRM
// server and returns a state bag with Packer's WinRM communicator to it.
func guestState(t *testing.T) (*testguest.Guest, multistep.StateBag, *testio.LockedBuffer) {
	t.Helper()
	g := testguest.StartForTest(t, testguest.Options{User: "Administrator", Password: "Build-Pw-42", QuietModuleLoad: true})
	host, port := g.HostPort()
	comm, err := sdkwinrm.New(&sdkwinrm.Config{Host: host, Port: port, Username: "Administrator", Password: "Build-Pw-42", Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	out := &testio.LockedBuffer{}
	state := new(multistep.BasicStateBag)
	state.Put("ui", &packersdk.BasicUi{Reader: strings.NewReader(""), Writer: out, ErrorWriter: out})
	state.Put("communicator", comm)
	return g, state, out
}

// The record winbake-updates writes (its own type, marshalled as the
// provisioner does) is read back through WinRM into the manifest's list.
func TestReadUpdatesRecordPresent(t *testing.T) {
	g, state, out := guestState(t)
	rec := guestcontract.UpdatesRecord{Version: 1, Finished: time.Now().UTC(), Packages: []guestcontract.UpdatesRecordPackage{
		{File: "ssu-20348.2700-x64.cab", KB: "KB5044415", Kind: guestcontract.KindServicingStack, Result: "installed"},
		{File: "windows10.0-kb5044281-x64.msu", KB: "KB5044281", Kind: guestcontract.KindCumulative, Result: "installed", Message: "Überprüft"},
		{File: "driver.cab", Kind: guestcontract.KindOther, Result: "not_applicable"},
	}}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Machine.FS().WriteFile(guestcontract.UpdatesRecordPath, append(b, '\r', '\n')); err != nil {
		t.Fatal(err)
	}
	if action := new(StepReadUpdatesRecord).Run(context.Background(), state); action != multistep.ActionContinue {
		t.Fatalf("halted: %v", state.Get("error"))
	}
	want := []image.ManifestUpdate{
		{KB: "KB5044415", File: "ssu-20348.2700-x64.cab", Result: "installed"},
		{KB: "KB5044281", File: "windows10.0-kb5044281-x64.msu", Result: "installed"},
		{File: "driver.cab", Result: "not_applicable"},
	}
	if got, _ := state.Get(StateUpdates).([]image.ManifestUpdate); !reflect.DeepEqual(got, want) {
		t.Errorf("updates %+v, want %+v", got, want)
	}
	if _, list := ManifestGuestFacts(state); len(list) != 3 {
		t.Errorf("ManifestGuestFacts updates %+v", list)
	}
	if !strings.Contains(out.String(), "lists 3 package(s)") {
		t.Errorf("UI: %s", out)
	}
}

// No record: the manifest gets no updates key, and the build goes on.
func TestReadUpdatesRecordAbsent(t *testing.T) {
	_, state, out := guestState(t)
	if action := new(StepReadUpdatesRecord).Run(context.Background(), state); action != multistep.ActionContinue {
		t.Fatalf("halted: %v", state.Get("error"))
	}
	if v, ok := state.GetOk(StateUpdates); ok {
		t.Errorf("updates %v without a record", v)
	}
	if !strings.Contains(out.String(), "No winbake-updates record") {
		t.Errorf("UI: %s", out)
	}
}

// A record that cannot be read (a directory in its place: reading it is
// denied) or is not a winbake-updates record fails the build with an
// error naming the file.
func TestReadUpdatesRecordUnreadable(t *testing.T) {
	for name, setup := range map[string]func(g *testguest.Guest) error{
		"directory": func(g *testguest.Guest) error { return g.Machine.FS().MkdirAll(guestcontract.UpdatesRecordPath) },
		"not json": func(g *testguest.Guest) error {
			return g.Machine.FS().WriteFile(guestcontract.UpdatesRecordPath, []byte("{truncated"))
		},
	} {
		t.Run(name, func(t *testing.T) {
			g, state, _ := guestState(t)
			if err := setup(g); err != nil {
				t.Fatal(err)
			}
			if action := new(StepReadUpdatesRecord).Run(context.Background(), state); action != multistep.ActionHalt {
				t.Fatal("an unreadable record did not stop the build")
			}
			err, _ := state.Get("error").(error)
			if err == nil || !strings.Contains(err.Error(), guestcontract.UpdatesRecordPath) {
				t.Errorf("error %v does not name %s", err, guestcontract.UpdatesRecordPath)
			}
			t.Log(err)
			if _, ok := state.GetOk(StateUpdates); ok {
				t.Error("updates set from an unreadable record")
			}
		})
	}
}

// The QEMU guest agent is reported installed exactly when its service is
// registered (virtio-win's qemu-ga installer creates the service QEMU-GA).
func TestCheckGuestAgent(t *testing.T) {
	g, state, _ := guestState(t)
	step := new(StepCheckGuestAgent)
	if action := step.Run(context.Background(), state); action != multistep.ActionContinue {
		t.Fatalf("halted: %v", state.Get("error"))
	}
	if v, ok := state.Get(StateQemuGuestAgent).(bool); !ok || v {
		t.Errorf("without the service: %v %v", v, ok)
	}
	if ga, _ := ManifestGuestFacts(state); ga == nil || *ga {
		t.Errorf("ManifestGuestFacts guest agent %v", ga)
	}
	key := `HKLM\SYSTEM\CurrentControlSet\Services\QEMU-GA`
	reg := g.Machine.RegistryFor("Administrator")
	if err := reg.SetExpandString(key, "ImagePath", `"C:\Program Files\Qemu-ga\qemu-ga.exe" -d --retry-path`); err != nil {
		t.Fatal(err)
	}
	if err := reg.SetDWORD(key, "Start", 2); err != nil {
		t.Fatal(err)
	}
	if action := step.Run(context.Background(), state); action != multistep.ActionContinue {
		t.Fatalf("halted: %v", state.Get("error"))
	}
	if ga, _ := ManifestGuestFacts(state); ga == nil || !*ga {
		t.Errorf("with the service: %v", ga)
	}
}

// communicator "none" (or no communicator at all) reads nothing.
func TestGuestStepsWithoutCommunicator(t *testing.T) {
	state := new(multistep.BasicStateBag)
	state.Put("ui", packersdk.TestUi(t))
	for _, step := range []multistep.Step{&StepCheckGuestAgent{CommunicatorType: "none"}, &StepReadUpdatesRecord{CommunicatorType: "none"}} {
		if step.Run(context.Background(), state) != multistep.ActionContinue {
			t.Fatalf("%T halted", step)
		}
	}
	if ga, list := ManifestGuestFacts(state); ga != nil || list != nil {
		t.Errorf("facts %v %v without a communicator", ga, list)
	}
}

func TestManifestISOChecksum(t *testing.T) {
	for in, want := range map[string]string{"none": "", "": "", "SHA256:ABCD": "sha256:abcd", "md5:0f": "md5:0f"} {
		if got := ManifestISOChecksum(in, nil); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
	// A source_image build carries its source's checksum, never the
	// (unused) iso_checksum.
	src := &SourceImageConfig{SourceImage: "golden.qcow2", manifest: &SourceManifest{ISOChecksum: "sha256:0123"}}
	if got := ManifestISOChecksum("none", src); got != "sha256:0123" {
		t.Errorf("source image: %q", got)
	}
	src.manifest = nil
	if got := ManifestISOChecksum("sha256:ff", src); got != "" {
		t.Errorf("source image without a manifest: %q", got)
	}
}
