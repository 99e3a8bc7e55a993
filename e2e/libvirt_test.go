//go:build e2e

package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/standin"
)

// The libvirtd that scripts/libvirt-lab.sh starts (make e2e starts and
// stops it around the tests).
const (
	libvirtLabURI = "qemu:///system?socket=/run/winbake-libvirt/sock/libvirt-sock"
	libvirtTCPURI = "qemu+tcp://127.0.0.1/system"
	// TLS with the lab CA's client certificate; the server's certificate
	// is checked against the CA and the address.
	libvirtTLSURI = "qemu+tls://127.0.0.1/system?pkipath=/run/winbake-libvirt/pki"
	// libssh: go-libvirt checks the host key against the lab's
	// known_hosts and tunnels to libvirtd's unix socket through sshd.
	libvirtSSHURI = "qemu+libssh://root@127.0.0.1:16522/system?socket=/run/winbake-libvirt/sock/libvirt-sock" +
		"&keyfile=/run/winbake-libvirt/ssh/id_ed25519&known_hosts=/run/winbake-libvirt/ssh/known_hosts"
)

// libvirtLab connects to the lab's libvirtd or fails with what to run.
func libvirtLab(t *testing.T) *golibvirt.Libvirt {
	t.Helper()
	u, _ := url.Parse(libvirtLabURI)
	l, err := golibvirt.ConnectToURI(u)
	if err != nil {
		t.Fatalf("no libvirtd at %s (%v): start it with `sudo bash scripts/libvirt-lab.sh start` (make e2e does this)", libvirtLabURI, err)
	}
	t.Cleanup(func() { _ = l.Disconnect() })
	return l
}

// testPool creates a transient dir storage pool for one test; it vanishes
// when destroyed. The directory must be reachable by QEMU, which libvirt
// runs as its own user.
func testPool(t *testing.T, l *golibvirt.Libvirt) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "winbake-libvirt-pool-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "winbake-e2e-" + hex.EncodeToString(b)
	doc, err := (&libvirtxml.StoragePool{Type: "dir", Name: name, Target: &libvirtxml.StoragePoolTarget{Path: dir}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	pool, err := l.StoragePoolCreateXML(doc, 0)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("creating the test pool: %v", err)
	}
	t.Logf("transient dir pool %s in %s", name, dir)
	t.Cleanup(func() {
		_ = l.StoragePoolDestroy(pool)
		os.RemoveAll(dir)
	})
	return name
}

// testNetwork creates a transient isolated libvirt network with DHCP
// (libvirt runs its dnsmasq) for one test; it vanishes when destroyed. The
// host holds the network's first address, so WinRM reaches the guest.
func testNetwork(t *testing.T, l *golibvirt.Libvirt) string {
	t.Helper()
	const name, bridge = "winbake-e2e-net", "wbvirbr-e2e"
	if old, err := l.NetworkLookupByName(name); err == nil {
		// Left by an interrupted run: transient, so destroying removes it.
		_ = l.NetworkDestroy(old)
	}
	doc, err := (&libvirtxml.Network{
		Name:   name,
		Bridge: &libvirtxml.NetworkBridge{Name: bridge, STP: "off"},
		IPs: []libvirtxml.NetworkIP{{Address: "192.168.214.1", Netmask: "255.255.255.0",
			DHCP: &libvirtxml.NetworkDHCP{Ranges: []libvirtxml.NetworkDHCPRange{{Start: "192.168.214.100", End: "192.168.214.200"}}}}},
	}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	net, err := l.NetworkCreateXML(doc)
	if err != nil {
		t.Fatalf("creating the test network (libvirt needs dnsmasq-base and iptables; scripts/deps.sh installs them): %v", err)
	}
	t.Logf("transient libvirt network %s on %s, DHCP 192.168.214.100-200", name, bridge)
	t.Cleanup(func() { _ = l.NetworkDestroy(net) })
	return name
}

// poolDir is the directory of a dir pool on this machine.
func poolDir(t *testing.T, l *golibvirt.Libvirt, pool string) string {
	t.Helper()
	p, err := l.StoragePoolLookupByName(pool)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := l.StoragePoolGetXMLDesc(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	var x libvirtxml.StoragePool
	if err := x.Unmarshal(doc); err != nil || x.Target == nil {
		t.Fatalf("pool %s: %v\n%s", pool, err, doc)
	}
	return x.Target.Path
}

// nothingLeft checks that the build left no domain and no volume behind
// but the ones named in keep.
func nothingLeft(t *testing.T, l *golibvirt.Libvirt, pool, vmName string, keep ...string) {
	t.Helper()
	doms, _, err := l.ConnectListAllDomains(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range doms {
		if d.Name == vmName {
			t.Errorf("domain %s is still defined after the build", vmName)
		}
	}
	p, err := l.StoragePoolLookupByName(pool)
	if err != nil {
		t.Fatal(err)
	}
	_ = l.StoragePoolRefresh(p, 0)
	vols, _, err := l.StoragePoolListAllVolumes(p, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	kept := map[string]bool{}
	for _, v := range vols {
		kept[v.Name] = true
		if !slices.Contains(keep, v.Name) {
			t.Errorf("volume %s left in pool %s", v.Name, pool)
		}
	}
	for _, k := range keep {
		if !kept[k] {
			t.Errorf("volume %s is not in pool %s", k, pool)
		}
	}
	if b, err := exec.Command("pgrep", "-f", "qemu-system-x86_64 -name guest="+vmName+",").Output(); err == nil && len(b) > 0 {
		t.Errorf("QEMU of %s still runs: pids %s", vmName, b)
	}
}

type libvirtCase struct {
	name, uri, firmware, tpm, secureBoot string
	// bridge: the guest joins the test bridge (scripts/bridge-lab.sh)
	// instead of user networking.
	bridge bool
	// libvirtNetwork: the guest joins a libvirt network and its address
	// comes from the network's DHCP leases.
	libvirtNetwork bool
	// keepInPool: the disk stays in the pool as a volume.
	keepInPool bool
	// guestAgent: a virtio-win CD is attached, the first logon installs
	// the VirtIO Serial driver and the QEMU guest agent from it, and the
	// address comes from the agent (address_source = "agent").
	guestAgent bool
}

// guestAgentCommands install, at the first logon, the VirtIO Serial driver
// and virtio-win's QEMU guest agent from the virtio-win CD: F:, after the
// install ISO (D:) and the answer CD (E:).
var guestAgentCommands = []string{
	`pnputil /add-driver F:\vioserial\2k22\amd64\vioser.inf /install`,
	`msiexec /i F:\guest-agent\qemu-ga-x86_64.msi /qn /norestart`,
}

// virtioWinWithAgent builds a small virtio-win ISO: the Server 2022 amd64
// folders of the storage, network and serial drivers, and the guest
// agent's MSI in guest-agent\.
func virtioWinWithAgent(t *testing.T) string {
	t.Helper()
	files := map[string][]byte{"guest-agent/qemu-ga-x86_64.msi": []byte("winbake stand-in: QEMU guest agent MSI\r\n")}
	for _, d := range [][2]string{{"viostor", "viostor"}, {"vioscsi", "vioscsi"}, {"NetKVM", "netkvm"}, {"vioserial", "vioser"}} {
		files[d[0]+"/2k22/amd64/"+d[1]+".inf"] = []byte("; winbake stand-in test driver\r\n")
	}
	p := filepath.Join(t.TempDir(), "virtio-win.iso")
	if err := standin.AnswerCD(p, "virtio-win-0.1.266", files); err != nil {
		t.Fatal(err)
	}
	return p
}

func runLibvirtBuild(t *testing.T, tc libvirtCase) {
	iso := standinISO(t)
	l := libvirtLab(t)
	pool := testPool(t, l)
	out := filepath.Join(t.TempDir(), "out")
	vmName := "winbake-e2e-" + tc.name
	network, bridge, libvirtNetwork := "user", "", ""
	switch {
	case tc.bridge:
		network, bridge = "bridge", startBridgeLab(t)
	case tc.libvirtNetwork:
		network, libvirtNetwork = "", testNetwork(t, l)
	}
	args := []string{"build", "-var", "iso=" + iso, "-var", "output_dir=" + out,
		"-var", "libvirt_uri=" + tc.uri, "-var", "pool=" + pool, "-var", "vm_name=" + vmName,
		"-var", "firmware=" + tc.firmware, "-var", "tpm=" + tc.tpm, "-var", "secure_boot=" + tc.secureBoot,
		"-var", "network=" + network, "-var", "bridge=" + bridge, "-var", "libvirt_network=" + libvirtNetwork,
		"-var", fmt.Sprintf("keep_in_pool=%t", tc.keepInPool)}
	if tc.guestAgent {
		cmds, _ := json.Marshal(guestAgentCommands)
		args = append(args, "-var", "virtio_win_iso="+virtioWinWithAgent(t), "-var", "unattend_extra_commands="+string(cmds),
			"-var", "address_source=agent")
	}
	start := time.Now()
	log, err := installed.run("", append(args, filepath.Join("testdata", "standin-libvirt.pkr.hcl"))...)
	t.Logf("%s build took %s", tc.name, time.Since(start).Round(time.Second))
	var keep []string
	if tc.keepInPool && err == nil {
		keep = []string{vmName + ".qcow2"}
	}
	nothingLeft(t, l, pool, vmName, keep...)
	if err != nil {
		t.Fatalf("packer build: %v\n%s", err, log)
	}
	var m struct {
		Disk, SHA256, Firmware, Accelerator string
		TPM                                 bool
		EFIFirmwareCode                     string `json:"efi_firmware_code"`
		EFIVars                             string `json:"efivars"`
		TPMState                            string `json:"tpm_state"`
		AdminUser                           string `json:"admin_user"`
		QemuGuestAgent                      *bool  `json:"qemu_guest_agent"`
		SecureBoot                          bool   `json:"secure_boot"`
		Windows                             struct {
			ImageName string `json:"image_name"`
			Version   string
		}
	}
	b, err := os.ReadFile(filepath.Join(out, vmName+".json"))
	if err != nil {
		t.Fatalf("manifest: %v\n%s", err, log)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	// keep_in_pool: the manifest names the volume and has no checksum (the
	// disk was never read).
	if m.Disk != vmName+".qcow2" || (len(m.SHA256) == 64) == tc.keepInPool || m.Firmware != tc.firmware || m.TPM != (tc.tpm == "true") || m.Accelerator != "tcg" ||
		m.SecureBoot != (tc.secureBoot == "true") ||
		m.Windows.ImageName != "Windows Server 2022 SERVERSTANDARDCORE" || !strings.HasPrefix(m.Windows.Version, "10.0.20348") {
		t.Errorf("manifest %s", b)
	}
	// The guest was asked before the shutdown (the stand-in has the
	// QEMU-GA service only when the first logon installed it); under UEFI
	// the manifest names the loader libvirt chose, read back from the live
	// domain XML, a file on this machine.
	if m.AdminUser != "Administrator" || m.QemuGuestAgent == nil || *m.QemuGuestAgent != tc.guestAgent {
		t.Errorf("manifest admin_user %q qemu_guest_agent %v; want Administrator and %t:\n%s", m.AdminUser, m.QemuGuestAgent, tc.guestAgent, b)
	}
	if tc.firmware == "uefi" {
		if _, err := os.Stat(m.EFIFirmwareCode); m.EFIFirmwareCode == "" || err != nil {
			t.Errorf("manifest efi_firmware_code %q: %v", m.EFIFirmwareCode, err)
		}
		// The domain's NVRAM and swtpm state, which libvirt removes with
		// the domain, are kept with the artifact as winbake-qemu keeps them.
		if fi, err := os.Stat(filepath.Join(out, "efivars.fd")); m.EFIVars != "efivars.fd" || err != nil || fi.Size() < 128<<10 {
			t.Errorf("UEFI variables: manifest efivars %q, file %v", m.EFIVars, err)
		}
		if tc.tpm == "true" {
			if _, err := os.Stat(filepath.Join(out, "tpm", "tpm2-00.permall")); m.TPMState != "tpm" || err != nil {
				t.Errorf("TPM state: manifest tpm_state %q, file %v", m.TPMState, err)
			}
		}
	} else if m.EFIFirmwareCode != "" {
		t.Errorf("BIOS build with efi_firmware_code %q", m.EFIFirmwareCode)
	}
	disk := filepath.Join(out, vmName+".qcow2")
	if tc.keepInPool {
		if _, err := os.Stat(disk); err == nil {
			t.Errorf("keep_in_pool: the disk was downloaded to %s as well", disk)
		}
		if !strings.Contains(log, "qcow2 volume "+pool+"/"+vmName+".qcow2") {
			t.Errorf("the artifact does not name the kept volume:\n%s", log)
		}
		disk = filepath.Join(poolDir(t, l, pool), vmName+".qcow2")
	}
	if info, err := exec.Command("qemu-img", "info", disk).CombinedOutput(); err != nil || !strings.Contains(string(info), "file format: qcow2") {
		t.Errorf("qemu-img info: %v\n%s", err, info)
	}
	// The stand-in's Setup wrote the disk inside the domain; the download
	// carries what it wrote, not an empty image.
	if check, err := exec.Command("qemu-img", "check", disk).CombinedOutput(); err != nil {
		t.Errorf("qemu-img check: %v\n%s", err, check)
	}
	if fi, err := os.Stat(disk); err != nil || fi.Size() < 1<<20 {
		t.Errorf("downloaded disk is implausibly small: %v %v", fi, err)
	}
	// The hypervisor is this machine: its serial console log is kept.
	serial, err := os.ReadFile(filepath.Join(out, "serial.log"))
	if err != nil || len(serial) == 0 {
		t.Errorf("serial.log missing or empty in the output directory: %v", err)
	}
	// Setup reads the SecureBoot variable the firmware set.
	if strings.Contains(string(serial), "Secure Boot on") != (tc.secureBoot == "true") {
		t.Errorf("serial.log and secure_boot = %s disagree on Secure Boot:\n%s", tc.secureBoot, serial)
	}
	// WinRM went to the guest's own address where it has one.
	switch {
	case tc.guestAgent:
		if !regexp.MustCompile(`The guest's address is 192\.168\.214\.\d+ \(from address_source = agent\)`).MatchString(log) {
			t.Errorf("the log does not report the guest's address from the QEMU guest agent:\n%s", log)
		}
		if !strings.Contains(string(serial), "qemu-ga: service QEMU-GA running on org.qemu.guest_agent.0") {
			t.Errorf("serial.log does not show the guest agent running:\n%s", serial)
		}
		n := strings.Count(string(serial), "qemu-ga: QEMU guest agent: ")
		t.Logf("the guest agent answered %d command(s) from libvirt", n)
		// libvirt sent only commands the stand-in's agent models.
		if strings.Contains(string(serial), "qemu-ga: not understood") {
			t.Errorf("libvirt sent the guest agent a command the stand-in does not model:\n%s", serial)
		}
	case tc.libvirtNetwork:
		if !strings.Contains(log, "The guest's address is 192.168.214.") || !strings.Contains(log, "(from address_source = lease)") {
			t.Errorf("the log does not report the guest's DHCP lease on the test network:\n%s", log)
		}
	case tc.bridge:
		if !strings.Contains(log, "The guest's address is 192.168.213.") {
			t.Errorf("the log does not report the guest's address on the test bridge:\n%s", log)
		}
	}
	wants := []string{"Uploading the install ISO", "The VM powered off", "Downloading volume " + vmName + ".qcow2"}
	if tc.keepInPool {
		wants = wants[:2]
		if strings.Contains(log, "Downloading volume") {
			t.Errorf("keep_in_pool: the disk was downloaded:\n%s", log)
		}
	}
	for _, want := range wants {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
}

// The stand-in ISO installed by real Packer on the lab's libvirtd under
// TCG: media uploaded into a pool, Setup from the generated answer file,
// WinRM, shutdown /s /t 0, disk downloaded, domain and volumes removed.
// BIOS on a host bridge (the guest's DHCP address from the hypervisor's
// ARP table), then UEFI with Secure Boot (libvirt's firmware
// autoselection: Microsoft's keys enrolled) and a TPM through the
// user-mode forward.
func TestLibvirtBuildsStandin(t *testing.T) {
	t.Parallel()
	for _, tc := range []libvirtCase{
		{name: "bios", uri: libvirtLabURI, firmware: "bios", tpm: "false", secureBoot: "false", bridge: true},
		{name: "uefi", uri: libvirtLabURI, firmware: "uefi", tpm: "true", secureBoot: "true"},
	} {
		t.Run(tc.name, func(t *testing.T) { runLibvirtBuild(t, tc) })
	}
}

// The same build over a remote URI, libvirt's TCP transport on loopback,
// with the guest on a libvirt network: its address is read from the
// network's DHCP leases through the remote connection.
func TestLibvirtBuildsStandinOverTCP(t *testing.T) {
	t.Parallel()
	runLibvirtBuild(t, libvirtCase{name: "tcp", uri: libvirtTCPURI, firmware: "bios", tpm: "false", secureBoot: "false", libvirtNetwork: true})
}

// The same build through SSH, as operators reach a virt host: the lab's
// sshd in front of libvirtd, key authentication, host key checked.
func TestLibvirtBuildsStandinOverSSH(t *testing.T) {
	t.Parallel()
	runLibvirtBuild(t, libvirtCase{name: "ssh", uri: libvirtSSHURI, firmware: "bios", tpm: "false", secureBoot: "false"})
}

// The guest's address from the QEMU guest agent: the first logon installs
// the VirtIO Serial driver and qemu-ga from a virtio-win CD, the agent
// answers libvirt on the org.qemu.guest_agent.0 channel with the guest's
// DHCP address on the test network, and the manifest records the QEMU-GA
// service.
func TestLibvirtBuildsStandinAgentAddress(t *testing.T) {
	t.Parallel()
	runLibvirtBuild(t, libvirtCase{name: "agent", uri: libvirtLabURI, firmware: "bios", tpm: "false", secureBoot: "false",
		libvirtNetwork: true, guestAgent: true})
}

// And through TLS, libvirt's other remote transport, keeping the disk in
// the pool instead of downloading it.
func TestLibvirtBuildsStandinOverTLS(t *testing.T) {
	t.Parallel()
	runLibvirtBuild(t, libvirtCase{name: "tls", uri: libvirtTLSURI, firmware: "bios", tpm: "false", secureBoot: "false", keepInPool: true})
}

// A missing pool fails with an error naming `pool`, before anything is
// created.
func TestLibvirtMissingPoolFails(t *testing.T) {
	t.Parallel()
	iso := standinISO(t)
	l := libvirtLab(t)
	out := filepath.Join(t.TempDir(), "out")
	log, err := installed.run("", "build", "-var", "iso="+iso, "-var", "output_dir="+out,
		"-var", "libvirt_uri="+libvirtLabURI, "-var", "pool=winbake-no-such-pool", "-var", "vm_name=winbake-e2e-nopool",
		filepath.Join("testdata", "standin-libvirt.pkr.hcl"))
	if err == nil {
		t.Fatalf("build succeeded without a pool:\n%s", log)
	}
	if !strings.Contains(log, `pool: storage pool "winbake-no-such-pool" does not exist`) || strings.Contains(log, "Starting domain") {
		t.Errorf("want the pool error before the domain starts:\n%s", log)
	}
	if _, err := l.DomainLookupByName("winbake-e2e-nopool"); err == nil {
		t.Error("domain defined although the pool is missing")
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("output directory left behind")
	}
}

// Ctrl-C while the domain boots (UEFI with a TPM): Packer cancels the
// build through the plugin and every step undoes its part: the domain is
// destroyed and undefined (libvirt stops its swtpm), the uploaded media
// and the disk volume are deleted, no output directory is left.
func TestLibvirtInterruptLeavesNothing(t *testing.T) {
	t.Parallel()
	iso := standinISO(t)
	l := libvirtLab(t)
	pool := testPool(t, l)
	out := filepath.Join(t.TempDir(), "out")
	const vmName = "winbake-e2e-interrupt"
	cmd := exec.Command(installed.packer, "build", "-var", "iso="+iso, "-var", "output_dir="+out,
		"-var", "libvirt_uri="+libvirtLabURI, "-var", "pool="+pool, "-var", "vm_name="+vmName,
		"-var", "firmware=uefi", "-var", "tpm=true", "-var", "secure_boot=true",
		filepath.Join("testdata", "standin-libvirt.pkr.hcl"))
	cmd.Env = installed.environ()
	b := startInterruptible(t, cmd)

	// Interrupt once the domain runs and its TPM emulator is up.
	b.waitFor(t, "the domain to run", func() bool {
		d, err := l.DomainLookupByName(vmName)
		if err != nil {
			return false
		}
		state, _, err := l.DomainGetState(d, 0)
		return err == nil && golibvirt.DomainState(state) == golibvirt.DomainRunning && len(processesMentioning("swtpm", vmName)) > 0
	})
	time.Sleep(2 * time.Second) // the firmware at work
	if err := b.interrupt(t); err == nil {
		t.Errorf("packer exited 0 after SIGINT:\n%s", b.log.String())
	}
	nothingLeft(t, l, pool, vmName)
	for _, p := range leftRunning(func() []string {
		return append(processesMentioning("swtpm", vmName), b.plugins()...)
	}) {
		t.Errorf("still running after the interrupted build: %s", p)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("the output directory %s is left behind", out)
	}
}
