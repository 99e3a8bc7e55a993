//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/testing/vmslot"
)

// standinISO is the stand-in install ISO (make standin-iso), or the one
// WINBAKE_STANDIN_ISO names. A test asking for it boots the stand-in: it
// holds one of the machine's VM slots until it ends.
func standinISO(t *testing.T) string {
	t.Helper()
	vmslot.Acquire(t)
	if iso := os.Getenv("WINBAKE_STANDIN_ISO"); iso != "" {
		return iso
	}
	iso, err := filepath.Abs(filepath.Join("..", "build", "standin", "winbake-standin.iso"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(iso); err != nil {
		t.Fatalf("the stand-in ISO is missing: run make standin-iso (%v)", err)
	}
	return iso
}

func noQEMULeft(t *testing.T, out string) {
	t.Helper()
	if b, err := exec.Command("pgrep", "-f", "qemu-system-x86_64 -name standin .*"+out).Output(); err == nil && len(b) > 0 {
		t.Errorf("QEMU still runs after the build: pids %s", b)
	}
}

// The stand-in ISO installed by real Packer into a golden qcow2 disk under
// TCG: Setup from the generated answer file, WinRM, shutdown /s /t 0,
// manifest. BIOS on a host bridge (the guest's DHCP address found in the
// host's neighbour table), where WinRM speaks HTTPS with the build's
// certificate and a capture of the bridge holds neither the password, in
// any of its forms, nor a WinRM message's text; then UEFI with Secure Boot
// (Microsoft's keys)
// and a TPM on user networking: the ISO boots through Debian's shim,
// signed by Microsoft, as real Linux media do, and Setup's disk through
// the same chain.
func TestQemuBuildsStandin(t *testing.T) {
	t.Parallel()
	iso := standinISO(t)
	for _, tc := range []struct {
		firmware   string
		tpm        string
		secureBoot string
		network    string
		// hostData is what the provisioner sees of the generated data.
		hostData string
	}{
		{"bios", "false", "false", "bridge", "WinbakeHostIP=" + bridgeLabHostIP + " WinbakeHostBindIP=" + bridgeLabHostIP},
		{"uefi", "true", "true", "user", "WinbakeHostIP=10.0.2.2 WinbakeHostBindIP=127.0.0.1"},
	} {
		t.Run(tc.firmware, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			args := []string{"build", "-var", "iso=" + iso, "-var", "output_dir=" + out,
				"-var", "firmware=" + tc.firmware, "-var", "tpm=" + tc.tpm, "-var", "secure_boot=" + tc.secureBoot, "-var", "network=" + tc.network}
			// On the bridge every frame is captured: the build password, in
			// any form, and the text of WinRM's messages must not be on the
			// wire.
			const password = "Bridge-e2e-Pw-7x"
			var capt *capture
			if tc.network == "bridge" {
				bridge := startBridgeLab(t)
				args = append(args, "-var", "bridge="+bridge, "-var", "winrm_password="+password)
				capt = startCapture(t, bridge)
			}
			start := time.Now()
			log, err := installed.run("", append(args, filepath.Join("testdata", "standin.pkr.hcl"))...)
			t.Logf("%s build took %s", tc.firmware, time.Since(start).Round(time.Second))
			noQEMULeft(t, out)
			var packets []capturedPacket
			if capt != nil {
				packets = capt.stop(t)
			}
			if err != nil {
				t.Fatalf("packer build: %v\n%s", err, log)
			}
			if capt != nil {
				checkBridgeCapture(t, packets, "Administrator", password)
				if strings.Contains(log, password) {
					t.Error("the build password is in the build log")
				}
			}
			var m struct {
				Disk, SHA256, Firmware string
				TPM                    bool
				SecureBoot             bool `json:"secure_boot"`
				Windows                struct {
					ImageName string `json:"image_name"`
					Version   string
				}
				WinRM struct{ Transport, Thumbprint, Certificate string } `json:"winrm"`
			}
			b, err := os.ReadFile(filepath.Join(out, "standin.json"))
			if err != nil {
				t.Fatalf("manifest: %v\n%s", err, log)
			}
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			if m.Disk != "standin.qcow2" || len(m.SHA256) != 64 || m.Firmware != tc.firmware || m.TPM != (tc.tpm == "true") ||
				m.SecureBoot != (tc.secureBoot == "true") ||
				m.Windows.ImageName != "Windows Server 2022 SERVERSTANDARDCORE" || !strings.HasPrefix(m.Windows.Version, "10.0.20348") {
				t.Errorf("manifest %s", b)
			}
			// A bridge gets HTTPS with the build's certificate, the user
			// network's loopback forward keeps HTTP.
			if wantTransport := map[string]string{"bridge": "https", "user": "http"}[tc.network]; m.WinRM.Transport != wantTransport ||
				(wantTransport == "https") != (len(m.WinRM.Thumbprint) == 40 && strings.Contains(m.WinRM.Certificate, "BEGIN CERTIFICATE")) {
				t.Errorf("manifest winrm %+v, want transport %s", m.WinRM, wantTransport)
			}
			if strings.Contains(string(b), "PRIVATE KEY") {
				t.Error("the manifest holds a private key")
			}
			// Setup reads the SecureBoot variable the firmware set.
			if serial, err := os.ReadFile(filepath.Join(out, "serial.log")); err != nil ||
				strings.Contains(string(serial), "Secure Boot on") != (tc.secureBoot == "true") {
				t.Errorf("serial.log (%v) and secure_boot = %s disagree on Secure Boot:\n%s", err, tc.secureBoot, serial)
			}
			if info, err := exec.Command("qemu-img", "info", filepath.Join(out, "standin.qcow2")).CombinedOutput(); err != nil || !strings.Contains(string(info), "file format: qcow2") {
				t.Errorf("qemu-img info: %v\n%s", err, info)
			}
			// The shell-local provisioner prints the generated data.
			if !strings.Contains(log, tc.hostData) {
				t.Errorf("the provisioner did not see the generated data:\n%s", log)
			}
			if !strings.Contains(log, "The VM powered off") {
				t.Errorf("the VM did not power off by itself:\n%s", log)
			}
			for _, gone := range []string{"qmp.sock", "qemu.pid"} {
				if _, err := os.Stat(filepath.Join(out, gone)); !os.IsNotExist(err) {
					t.Errorf("%s left in the output directory", gone)
				}
			}
		})
	}
}

// A wrong image_name fails before QEMU starts and leaves no output.
func TestQemuBadImageNameFailsBeforeQEMU(t *testing.T) {
	t.Parallel()
	iso := standinISO(t)
	out := filepath.Join(t.TempDir(), "out")
	log, err := installed.run("", "build", "-var", "iso="+iso, "-var", "output_dir="+out,
		"-var", "image_name=Windows 11 Pro", filepath.Join("testdata", "standin.pkr.hcl"))
	if err == nil {
		t.Fatalf("build succeeded with a wrong image_name:\n%s", log)
	}
	if !strings.Contains(log, `image_name "Windows 11 Pro" is not in`) || strings.Contains(log, "Starting QEMU") {
		t.Errorf("want the image_name error before QEMU starts:\n%s", log)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("output directory created")
	}
}

// A Setup that fails in windowsPE (a virtio-blk disk without the viostor
// driver: Setup sees no disk) never brings WinRM up; the build's error
// names the last Setup phase the serial console showed and Setup's error,
// and says setuperr.log could not be read.
func TestQemuFailedSetupNamesPhase(t *testing.T) {
	t.Parallel()
	iso := standinISO(t)
	out := filepath.Join(t.TempDir(), "out")
	log, err := installed.run("", "build", "-var", "iso="+iso, "-var", "output_dir="+out,
		"-var", "disk_interface=virtio-blk", "-var", "winrm_timeout=2m", filepath.Join("testdata", "standin.pkr.hcl"))
	noQEMULeft(t, out)
	if err == nil {
		t.Fatalf("build succeeded without a disk driver:\n%s", log)
	}
	for _, w := range []string{
		"last Windows Setup phase on the serial console: windowsPE",
		"Windows Setup error: ",
		`X:\Windows\Panther\setuperr.log, is never reachable`,
	} {
		if !strings.Contains(log, w) {
			t.Errorf("the build's error lacks %q:\n%s", w, log)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("a failed build left its output directory")
	}
}

// A golden disk refreshed with source_image: the stand-in is installed
// (UEFI with a TPM), then a second build boots its disk without Setup,
// keeps its UEFI variables and TPM state, and leaves a standalone qcow2;
// the source's checksum is unchanged.
func TestQemuBuildsFromSourceImage(t *testing.T) {
	t.Parallel()
	iso := standinISO(t)
	dir := t.TempDir()
	golden, refreshed := filepath.Join(dir, "golden"), filepath.Join(dir, "refreshed")
	const password = "Standin-Refresh-1"
	log, err := installed.run("", "build", "-var", "iso="+iso, "-var", "output_dir="+golden, "-var", "firmware=uefi", "-var", "tpm=true",
		"-var", "winrm_password="+password, filepath.Join("testdata", "standin.pkr.hcl"))
	if err != nil {
		t.Fatalf("golden build: %v\n%s", err, log)
	}
	src := filepath.Join(golden, "standin.qcow2")
	sum := sha256Of(t, src)
	start := time.Now()
	log, err = installed.run("", "build", "-var", "source_image="+src, "-var", "source_image_checksum=sha256:"+sum,
		"-var", "output_dir="+refreshed, "-var", "winrm_password="+password, filepath.Join("testdata", "standin-refresh.pkr.hcl"))
	t.Logf("refresh build took %s", time.Since(start).Round(time.Second))
	noQEMULeft(t, refreshed)
	if err != nil {
		t.Fatalf("refresh build: %v\n%s", err, log)
	}
	if got := sha256Of(t, src); got != sum {
		t.Errorf("the source image changed: %s -> %s", sum, got)
	}
	if strings.Contains(log, "Windows install ISO") || strings.Contains(log, "MiB qcow2 disk") {
		t.Errorf("the refresh used install media or a new disk:\n%s", log)
	}
	for _, w := range []string{"on top of " + src, "Flattening", "TPM state from " + filepath.Join(golden, "tpm"), "The VM powered off"} {
		if !strings.Contains(log, w) {
			t.Errorf("log lacks %q:\n%s", w, log)
		}
	}
	disk := filepath.Join(refreshed, "standin-refresh.qcow2")
	info, err := exec.Command("qemu-img", "info", disk).CombinedOutput()
	if err != nil || !strings.Contains(string(info), "file format: qcow2") || strings.Contains(string(info), "backing file") {
		t.Errorf("the refreshed disk is not a standalone qcow2: %v\n%s", err, info)
	}
	var m struct {
		Firmware    string
		TPM         bool
		SourceImage string `json:"source_image"`
		Windows     struct {
			ImageName string `json:"image_name"`
		}
	}
	b, err := os.ReadFile(filepath.Join(refreshed, "standin-refresh.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.Firmware != "uefi" || !m.TPM || m.SourceImage != src || m.Windows.ImageName != "Windows Server 2022 SERVERSTANDARDCORE" {
		t.Errorf("manifest %s", b)
	}
}

func sha256Of(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("sha256sum", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))[0]
}

// A provisioner fails while WinRM is connected: the error names the last
// Setup phase (complete) and reports C:\Windows\Panther\setuperr.log as
// read over WinRM from the stand-in (absent after a clean install).
func TestQemuFailedProvisionerReadsSetupErrLog(t *testing.T) {
	t.Parallel()
	iso := standinISO(t)
	out := filepath.Join(t.TempDir(), "out")
	log, err := installed.run("", "build", "-var", "iso="+iso, "-var", "output_dir="+out, filepath.Join("testdata", "qemu-provisioner-fails.pkr.hcl"))
	noQEMULeft(t, out)
	if err == nil {
		t.Fatalf("build succeeded with a failing provisioner:\n%s", log)
	}
	for _, w := range []string{
		"last Windows Setup phase on the serial console: complete",
		`C:\Windows\Panther\setuperr.log could not be read over WinRM (exit 1: The system cannot find the file specified.)`,
	} {
		if !strings.Contains(log, w) {
			t.Errorf("the build's error lacks %q:\n%s", w, log)
		}
	}
}

// unsignedLoaderISO is a copy of the stand-in ISO that boots under UEFI
// only, from an EFI system image whose \EFI\BOOT\BOOTX64.EFI is a GRUB
// built here by grub-mkimage: signed by no one.
func unsignedLoaderISO(t *testing.T, iso string) string {
	t.Helper()
	dir := t.TempDir()
	loader, efiImg, copyISO := filepath.Join(dir, "grubx64.efi"), filepath.Join(dir, "efi.img"), filepath.Join(dir, "unsigned.iso")
	for _, c := range [][]string{
		{"grub-mkimage", "-O", "x86_64-efi", "-o", loader, "-p", "/boot/grub", "iso9660", "normal", "configfile"},
		{"mformat", "-i", efiImg, "-C", "-f", "1440", "::"},
		{"mmd", "-i", efiImg, "::/EFI", "::/EFI/BOOT"},
		{"mcopy", "-i", efiImg, loader, "::/EFI/BOOT/BOOTX64.EFI"},
		{"xorriso", "-indev", iso, "-outdev", copyISO, "-boot_image", "any", "discard",
			"-map", efiImg, "/boot/efi.img", "-boot_image", "any", "efi_path=/boot/efi.img"},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
	if out, _ := exec.Command("sbverify", "--list", loader).CombinedOutput(); !strings.Contains(string(out), "No signature table present") {
		t.Fatalf("sbverify --list %s: want no signature:\n%s", loader, out)
	}
	return copyISO
}

// secure_boot = true boots OVMF's Secure Boot build with Microsoft's keys:
// media whose boot loader is not signed (here a copy of the stand-in ISO
// with an unsigned GRUB as BOOTX64.EFI) are refused by the firmware and the
// build's error says so as soon as the firmware refuses it.
func TestQemuSecureBootRefusesUnsignedMedia(t *testing.T) {
	t.Parallel()
	iso := unsignedLoaderISO(t, standinISO(t))
	out := filepath.Join(t.TempDir(), "out")
	log, err := installed.run("", "build", "-var", "iso="+iso, "-var", "output_dir="+out, "-var", "firmware=uefi", "-var", "tpm=false",
		"-var", "secure_boot=true", "-var", "winrm_timeout=2m", filepath.Join("testdata", "standin.pkr.hcl"))
	noQEMULeft(t, out)
	if err == nil {
		t.Fatalf("an unsigned boot loader booted with Secure Boot:\n%s", log)
	}
	for _, w := range []string{"OVMF_CODE_4M.ms.fd", "OVMF_VARS_4M.ms.fd", "Access Denied (Secure Boot refused the boot loader",
		"Secure Boot refused the boot loader, so Windows cannot start"} {
		if !strings.Contains(log, w) {
			t.Errorf("log lacks %q:\n%s", w, log)
		}
	}
	// The refusal ends the build, not winrm_timeout.
	if strings.Contains(log, "timeout waiting for WinRM") {
		t.Errorf("the build waited for WinRM after the firmware refused the boot loader:\n%s", log)
	}
}

// checkBridgeCapture checks a capture of the build's bridge: TLS to the
// guest's 5986 carried the build (so the capture saw it), the host spoke
// no HTTP to 5985, and no frame or TCP stream holds the password, its
// encodings, or the words every WinRM message in the clear has.
func checkBridgeCapture(t *testing.T, packets []capturedPacket, user, password string) {
	t.Helper()
	// The bridge may carry other tests' guests: keep the frames to and
	// from this build's guest, the one that answered on 5986.
	guests := map[string]bool{}
	for _, p := range packets {
		if p.TCP && p.SrcPort == 5986 && len(p.Payload) > 0 {
			guests[p.SrcIP] = true
		}
	}
	if len(guests) != 1 {
		t.Fatalf("%d guests answered on 5986 in the capture (%v): cannot tell this build's guest", len(guests), guests)
	}
	var guest string
	for ip := range guests {
		guest = ip
	}
	var mine []capturedPacket
	for _, p := range packets {
		if p.SrcIP == guest || p.DstIP == guest {
			mine = append(mine, p)
		}
	}
	packets = mine
	var tlsBytes, tlsRecords, plainToHTTP int
	for _, p := range packets {
		if !p.TCP {
			continue
		}
		switch {
		case p.DstPort == 5986 && len(p.Payload) > 0:
			tlsBytes += len(p.Payload)
			if p.Payload[0] == 0x16 || p.Payload[0] == 0x17 { // TLS handshake, application data
				tlsRecords++
			}
		case p.DstPort == 5985 && len(p.Payload) > 0:
			plainToHTTP++
		}
	}
	t.Logf("bridge capture: %d frames to or from the guest %s, %d bytes from the host to its 5986 (%d starting a TLS record), %d payloads to 5985",
		len(packets), guest, tlsBytes, tlsRecords, plainToHTTP)
	if tlsBytes < 10_000 || tlsRecords == 0 {
		t.Errorf("the capture holds %d bytes (%d TLS records) to the guest's WinRM over HTTPS: it did not see the build", tlsBytes, tlsRecords)
	}
	if plainToHTTP > 0 {
		t.Errorf("%d payloads went to the guest's HTTP port 5985", plainToHTTP)
	}
	secrets := credentialForms(user, password)
	for _, word := range []string{"EncodedCommand", "Envelope", "schemas.xmlsoap.org", "wsman", "WinRM connected", "shutdown"} {
		secrets["the text "+word] = word
	}
	for what, where := range findSecrets(packets, secrets) {
		t.Errorf("%s is on the wire (%s)", what, where)
	}
}

// bridgeLabHostIP is the host's address on the bridge of
// scripts/bridge-lab.sh.
const bridgeLabHostIP = "192.168.213.1"

// startBridgeLab returns the name of the test bridge with its DHCP server
// (scripts/bridge-lab.sh), created by the first test that asks and shared
// by the tests that run beside it; TestMain removes it at the end.
func startBridgeLab(t *testing.T) string {
	t.Helper()
	bridgeLab.once.Do(func() {
		out, err := exec.Command("bash", filepath.Join("..", "scripts", "bridge-lab.sh"), "start").CombinedOutput()
		bridgeLab.name, bridgeLab.started = strings.TrimSpace(string(out)), err == nil
		if err != nil {
			bridgeLab.err = fmt.Errorf("bridge-lab start: %v\n%s", err, out)
		}
	})
	if bridgeLab.err != nil {
		t.Fatal(bridgeLab.err)
	}
	return bridgeLab.name
}

var bridgeLab struct {
	once    sync.Once
	name    string
	started bool
	err     error
}

// stopBridgeLab removes the test bridge when a test created it.
func stopBridgeLab() error {
	if !bridgeLab.started {
		return nil
	}
	if out, err := exec.Command("bash", filepath.Join("..", "scripts", "bridge-lab.sh"), "stop").CombinedOutput(); err != nil {
		return fmt.Errorf("bridge-lab stop: %v\n%s", err, out)
	}
	return nil
}
