package libvirt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/image"
	"github.com/winbake/packer-plugin-winbake/internal/testing/mediatest"
)

// recordingDriver is an in-memory hypervisor: volumes with content,
// domains with a state, and a log of what was asked.
type recordingDriver struct {
	mu         sync.Mutex
	volumes    map[string][]byte
	domains    map[string]golibvirt.DomainState
	xml        string
	liveXML    string
	addressErr error
	keys       [][]uint32
	startErr   error
	undefined  []string
	closed     bool
	// installed is the system disk as the stand-in leaves it.
	installed []byte
}

func newRecordingDriver() *recordingDriver {
	return &recordingDriver{volumes: map[string][]byte{}, domains: map[string]golibvirt.DomainState{}}
}

func (d *recordingDriver) CheckPool(pool string) error {
	if pool != "default" {
		return errors.New(`pool: storage pool "` + pool + `" does not exist`)
	}
	return nil
}
func (d *recordingDriver) VolumeExists(_, name string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.volumes[name]
	return ok, nil
}
func (d *recordingDriver) CreateVolume(_, name, format string, capacity uint64) error {
	// A qcow2 volume holds what libvirt would create: a real, empty qcow2
	// image, which the downloaded disk's check reads.
	var content []byte
	if format == "qcow2" {
		var err error
		if content, err = emptyQcow2(capacity); err != nil {
			return err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.volumes[name] = content
	return nil
}
func (d *recordingDriver) UploadVolume(_, name string, r io.Reader, _ uint64) error {
	b, err := io.ReadAll(r)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.volumes[name] = b
	return err
}
func (d *recordingDriver) VolumeSize(_, name string) (uint64, error) {
	return uint64(len(d.volumes[name])), nil
}
func (d *recordingDriver) DownloadVolume(_, name string, w io.Writer) error {
	_, err := w.Write(d.volumes[name])
	return err
}
func (d *recordingDriver) DeleteVolume(_, name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.volumes, name)
	return nil
}
func (d *recordingDriver) DomainExists(name string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.domains[name]
	return ok, nil
}
func (d *recordingDriver) DefineAndStart(xml string) error {
	installed, err := installedQcow2()
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.xml = xml
	d.domains["packer-win"] = golibvirt.DomainShutoff
	if d.startErr != nil {
		return d.startErr
	}
	// The stand-in "installs" and powers off by itself.
	d.installed = installed
	d.volumes["packer-win.qcow2"] = installed
	return nil
}

// installedQcow2 is the system disk the stand-in leaves: made once per
// test binary, outside any driver lock (qemu-img takes its time on a busy
// machine).
var installedQcow2 = sync.OnceValues(func() ([]byte, error) { return qcow2Image(64<<30, "write -P 0x5a 0 64k") })

var emptyQcow2s sync.Map // capacity → []byte

// emptyQcow2 is a new qcow2 volume of that capacity, made once per size.
func emptyQcow2(capacity uint64) ([]byte, error) {
	if b, ok := emptyQcow2s.Load(capacity); ok {
		return b.([]byte), nil
	}
	b, err := qcow2Image(capacity, "")
	if err != nil {
		return nil, err
	}
	emptyQcow2s.Store(capacity, b)
	return b, nil
}

// qcow2Image returns a qcow2 image of the given virtual size, made by
// qemu-img and, when io is set, written by that qemu-io command.
func qcow2Image(capacity uint64, io string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "recording-volume-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	file := filepath.Join(dir, "volume.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", file, fmt.Sprint(capacity)).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("qemu-img create: %v: %s", err, out)
	}
	if io != "" {
		if out, err := exec.Command("qemu-io", "-f", "qcow2", "-c", io, file).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("qemu-io %s: %v: %s", io, err, out)
		}
	}
	return os.ReadFile(file)
}

// On a local hypervisor whose libvirt cannot read the ARP table over
// netlink, the guest's address on the bridge comes from the same table in
// /proc/net/arp; a remote hypervisor's error is reported as it is.
func TestWinRMHostARPFallback(t *testing.T) {
	arp := filepath.Join(t.TempDir(), "arp")
	if err := os.WriteFile(arp, []byte("IP address       HW type     Flags       HW address            Mask     Device\n"+
		"192.168.213.103  0x1         0x2         52:54:00:c6:97:73     *        wbbr0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ uri, want, err string }{
		{"qemu:///system", "192.168.213.103", ""},
		{"qemu+ssh://virthost/system", "", "wrong nlmsg len"},
	} {
		b, _, _ := prepared(t, map[string]interface{}{"network": "bridge", "bridge": "wbbr0", "libvirt_uri": tc.uri, "forward_address": ""})
		b.arpTable = arp
		drv := newRecordingDriver()
		drv.addressErr = errors.New("internal error: wrong nlmsg len")
		state := new(multistep.BasicStateBag)
		var out bytes.Buffer
		state.Put("ui", &packersdk.BasicUi{Writer: &out, ErrorWriter: &out})
		state.Put(stateDriver, Driver(drv))
		state.Put(stateDomainName, "packer-win")
		state.Put(stateMAC, "52:54:00:C6:97:73")
		for i := 0; i < 2; i++ { // StepConnect asks again on every try
			host, err := b.winrmHost(state)
			if host != tc.want || (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: host %q err %v; want %q %q", tc.uri, host, err, tc.want, tc.err)
			}
		}
		// The address is reported once, with where it came from.
		if want := "The guest's address is " + tc.want + " (from " + arp + ")"; tc.want != "" && (strings.Count(out.String(), "The guest's address") != 1 || !strings.Contains(out.String(), want)) {
			t.Errorf("%s: ui %q; want %q once", tc.uri, out.String(), want)
		}
	}
}

// DomainXML returns liveXML when set (what libvirt would report with the
// firmware it chose), else the defined XML.
func (d *recordingDriver) DomainXML(string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.liveXML != "" {
		return d.liveXML, nil
	}
	return d.xml, nil
}
func (d *recordingDriver) DomainState(name string) (golibvirt.DomainState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.domains[name], nil
}
func (d *recordingDriver) Shutdown(string) error { return nil }
func (d *recordingDriver) Destroy(string) error  { return nil }
func (d *recordingDriver) Undefine(name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.undefined = append(d.undefined, name)
	delete(d.domains, name)
	return nil
}
func (d *recordingDriver) SendKeys(_ string, codes []uint32) error {
	d.keys = append(d.keys, codes)
	return nil
}
func (d *recordingDriver) InterfaceAddresses(string, string, string) ([]string, error) {
	return nil, d.addressErr
}
func (d *recordingDriver) NetworkHostAddress(string) (string, error) { return "192.168.122.1", nil }
func (d *recordingDriver) KVMAvailable() (bool, error)               { return false, nil }
func (d *recordingDriver) Close() error                              { d.closed = true; return nil }

func prepared(t *testing.T, extra map[string]interface{}) (b *Builder, iso, out string) {
	t.Helper()
	t.Setenv("PACKER_CACHE_DIR", t.TempDir())
	iso = mediatest.InstallISO(t, mediatest.Server2022)
	out = filepath.Join(t.TempDir(), "out")
	raw := map[string]interface{}{
		"iso_url": iso, "iso_checksum": "none", "image_name": "Windows Server 2022 SERVERDATACENTER",
		"packer_build_name": "win", "communicator": "none", "output_directory": out, "accelerator": "tcg",
	}
	for k, v := range extra {
		raw[k] = v
	}
	b = new(Builder)
	names, _, err := b.Prepare(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(names, "WinbakeHostIP") || !slices.Contains(names, "WinbakeHostBindIP") {
		t.Errorf("generated data names %v", names)
	}
	return b, iso, out
}

// libvirtFirmwareFiles makes the files libvirt keeps for a UEFI domain
// with a TPM (its NVRAM file, its swtpm state under the domain's UUID) and
// sets the live XML that names them, with loader as the UEFI code file.
func libvirtFirmwareFiles(t *testing.T, b *Builder, drv *recordingDriver, loader string) {
	t.Helper()
	dir := t.TempDir()
	nvram := filepath.Join(dir, "packer-win_VARS.fd")
	const uuid = "5c7e0ac4-1c3a-4d6e-9a7e-0d1c2b3a4f50"
	b.swtpmDir = filepath.Join(dir, "swtpm")
	if err := os.MkdirAll(filepath.Join(b.swtpmDir, uuid, "tpm2"), 0o700); err != nil {
		t.Fatal(err)
	}
	for path, data := range map[string]string{nvram: "OVMF variables", filepath.Join(b.swtpmDir, uuid, "tpm2", "tpm2-00.permall"): "TPM state"} {
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	drv.liveXML = `<domain type="qemu"><name>packer-win</name><uuid>` + uuid + `</uuid><os firmware="efi"><type arch="x86_64" machine="pc-q35-7.2">hvm</type>` +
		`<loader readonly="yes" type="pflash">` + loader + `</loader><nvram>` + nvram + `</nvram></os></domain>`
}

// The whole step list against the in-memory hypervisor: media uploaded,
// domain defined, boot keys sent, disk downloaded, the UEFI variables and
// TPM state kept, and afterwards only the output directory's files remain.
func TestBuilderRunUploadsDownloadsAndCleansUp(t *testing.T) {
	b, _, out := prepared(t, nil)
	drv := newRecordingDriver()
	libvirtFirmwareFiles(t, b, drv, "/usr/share/OVMF/OVMF_CODE_4M.fd")
	b.connect = func(*url.URL) (Driver, error) { return drv, nil }
	b.config.BootWait = time.Millisecond
	art, err := b.Run(context.Background(), packersdk.TestUi(t), &packersdk.MockHook{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(drv.xml, `volume="packer-win-install.iso"`) || !strings.Contains(drv.xml, `volume="packer-win-answer.iso"`) {
		t.Errorf("domain XML lacks the install volume:\n%s", drv.xml)
	}
	if !strings.Contains(drv.xml, `firmware="efi"`) || !strings.Contains(drv.xml, `model="tpm-crb"`) {
		t.Errorf("UEFI with TPM expected:\n%s", drv.xml)
	}
	// The domain runs under TCG, where the default answers the install
	// media's key prompt with a space every second for 30 s.
	if len(drv.keys) != 30 {
		t.Errorf("boot command sent %d chords, want the 30 spaces of the TCG default", len(drv.keys))
	}
	if len(drv.volumes) != 0 || len(drv.domains) != 0 || !slices.Contains(drv.undefined, "packer-win") || !drv.closed {
		t.Errorf("left behind: volumes %v domains %v undefined %v closed %v", drv.volumes, drv.domains, drv.undefined, drv.closed)
	}
	disk, err := os.ReadFile(filepath.Join(out, "packer-win.qcow2"))
	if err != nil || len(drv.installed) == 0 || !bytes.Equal(disk, drv.installed) {
		t.Errorf("downloaded disk of %d bytes (%v), the stand-in left %d", len(disk), err, len(drv.installed))
	}
	for path, want := range map[string]string{"efivars.fd": "OVMF variables", "tpm/tpm2-00.permall": "TPM state"} {
		if got, err := os.ReadFile(filepath.Join(out, path)); err != nil || string(got) != want {
			t.Errorf("%s in the output: %q %v", path, got, err)
		}
	}
	var m image.Manifest
	if raw, err := os.ReadFile(filepath.Join(out, "packer-win.json")); err != nil || json.Unmarshal(raw, &m) != nil || m.EFIVars != "efivars.fd" || m.TPMState != "tpm" {
		t.Errorf("manifest efivars %q tpm_state %q (%v)", m.EFIVars, m.TPMState, err)
	}
	if art.BuilderId() != BuilderID || len(art.Files()) != 4 || art.State("generated_data") == nil {
		t.Errorf("artifact %s %v %v", art.BuilderId(), art.Files(), art.State("generated_data"))
	}
	gd := art.State("generated_data").(map[string]interface{})
	if gd["WinbakeHostIP"] != "10.0.2.2" || gd["WinbakeHostBindIP"] != "127.0.0.1" {
		t.Errorf("generated data %v", gd)
	}
}

// A domain that fails to start leaves nothing: no volume, no domain, no
// output directory.
func TestBuilderFailureRemovesEverything(t *testing.T) {
	b, _, out := prepared(t, map[string]interface{}{"firmware": "bios", "libvirt_network": "default"})
	drv := newRecordingDriver()
	drv.startErr = errors.New("starting the domain: no KVM")
	b.connect = func(*url.URL) (Driver, error) { return drv, nil }
	_, err := b.Run(context.Background(), packersdk.TestUi(t), &packersdk.MockHook{})
	if err == nil || !strings.Contains(err.Error(), "no KVM") {
		t.Fatalf("error %v", err)
	}
	if len(drv.volumes) != 0 || len(drv.domains) != 0 || !slices.Contains(drv.undefined, "packer-win") {
		t.Errorf("left behind: volumes %v domains %v undefined %v", drv.volumes, drv.domains, drv.undefined)
	}
	if !strings.Contains(drv.xml, `network="default"`) {
		t.Errorf("libvirt network expected:\n%s", drv.xml)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("output directory left behind")
	}
}

// Ctrl-C while the boot command waits: the domain and volumes go.
func TestBuilderCancelRemovesEverything(t *testing.T) {
	b, _, out := prepared(t, nil)
	drv := newRecordingDriver()
	b.connect = func(*url.URL) (Driver, error) { return drv, nil }
	b.config.BootWait = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			drv.mu.Lock()
			started := drv.xml != ""
			drv.mu.Unlock()
			if started {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	if _, err := b.Run(ctx, packersdk.TestUi(t), &packersdk.MockHook{}); err == nil {
		t.Fatal("a cancelled build succeeded")
	}
	if len(drv.volumes) != 0 || len(drv.domains) != 0 || !slices.Contains(drv.undefined, "packer-win") {
		t.Errorf("left behind: volumes %v domains %v undefined %v", drv.volumes, drv.domains, drv.undefined)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("output directory left behind")
	}
}

// The manifest carries the verified ISO checksum, the UEFI code file
// libvirt reports in the live domain XML and the build account; without a
// communicator nothing is read from the guest, so no updates and no guest
// agent answer; and never the build password.
func TestBuilderManifestFields(t *testing.T) {
	t.Setenv("PACKER_CACHE_DIR", t.TempDir())
	iso := mediatest.InstallISO(t, mediatest.Server2022)
	data, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	sum := fmt.Sprintf("sha256:%x", sha256.Sum256(data))
	out := filepath.Join(t.TempDir(), "out")
	b := new(Builder)
	if _, _, err := b.Prepare(map[string]interface{}{
		"iso_url": iso, "iso_checksum": strings.ToUpper(sum[7:]), "image_name": "Windows Server 2022 SERVERDATACENTER",
		"packer_build_name": "win", "communicator": "none", "output_directory": out, "accelerator": "tcg",
		"winrm_username": "builder", "winrm_password": "Build-Pw-1234",
	}); err != nil {
		t.Fatal(err)
	}
	drv := newRecordingDriver()
	libvirtFirmwareFiles(t, b, drv, "/usr/share/OVMF/OVMF_CODE_4M.ms.fd")
	b.connect = func(*url.URL) (Driver, error) { return drv, nil }
	b.config.BootWait = time.Millisecond
	if _, err := b.Run(context.Background(), packersdk.TestUi(t), &packersdk.MockHook{}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(out, "packer-win.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m image.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if m.ISOChecksum != sum || m.EFIFirmwareCode != "/usr/share/OVMF/OVMF_CODE_4M.ms.fd" || m.AdminUser != "builder" {
		t.Errorf("manifest iso_checksum %q efi_firmware_code %q admin_user %q", m.ISOChecksum, m.EFIFirmwareCode, m.AdminUser)
	}
	for _, key := range []string{`"updates"`, `"qemu_guest_agent"`, "Build-Pw-1234"} {
		if strings.Contains(string(raw), key) {
			t.Errorf("manifest has %s:\n%s", key, raw)
		}
	}
}
