package libvirt

import (
	"context"
	"crypto/rand"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/packerbuilderdata"
	"libvirt.org/go/libvirtxml"

	wbcommon "github.com/winbake/packer-plugin-winbake/builder/common"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// stepStartDomain picks the accelerator, builds the domain XML from the
// configuration and the volumes, defines the domain and starts it. It
// also exports WinbakeHostIP and WinbakeHostBindIP.
//
// Uses state: "ui", stateDriver, stateVolumes, stateDiskVolume,
// wbcommon.StateHostPort (user networking).
// Produces state: wbcommon.StateAccelerator, wbcommon.StateHyperV,
// stateMAC, stateDomainName,
// stateEFIFirmwareCode (when the live XML names a loader),
// "generated_data".
type stepStartDomain struct {
	Config *Config
	Host   qemuvm.HostPaths
	// GuestPort is the guest's WinRM port.
	GuestPort int

	defined bool
}

// serialLogPath is where the hypervisor logs the serial console.
func serialLogPath(vmName string) string {
	return "/var/log/libvirt/qemu/" + vmName + "-serial.log"
}

func (s *stepStartDomain) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	driver := state.Get(stateDriver).(Driver)
	c := s.Config

	accel, reason, err := s.accelerator(driver)
	if err != nil {
		return steps.Halt(state, ui, err)
	}
	ui.Say(fmt.Sprintf("Accelerator %s: %s", accel, reason))
	state.Put(qemuvm.StateAccelerator, accel)
	vmAccel := qemuvm.AccelTCG
	if accel == "kvm" {
		vmAccel = qemuvm.AccelKVM
	}
	hyperv, err := c.HyperV(vmAccel, reason)
	if err != nil {
		return steps.Halt(state, ui, err)
	}
	state.Put(qemuvm.StateHyperV, qemuvm.HyperVRecord(hyperv))

	spec, err := s.spec(state, accel)
	if err != nil {
		return steps.Halt(state, ui, err)
	}
	spec.HyperV = hyperv
	if hyperv {
		ui.Say("Hyper-V enlightenments: " + strings.Join(qemuvm.HyperVEnlightenments, ","))
	}
	hostIP, bindIP, err := s.hostAddresses(driver, spec.NetworkMode)
	if err != nil {
		return steps.Halt(state, ui, err)
	}
	gd := packerbuilderdata.GeneratedData{State: state}
	gd.Put(wbcommon.GeneratedHostIP, hostIP)
	gd.Put(wbcommon.GeneratedHostBindIP, bindIP)
	ui.Say(fmt.Sprintf("The guest reaches the hypervisor at %s (hypervisor-side servers listen on %s)", hostIP, bindIP))

	dom, err := spec.Domain()
	if err != nil {
		return steps.Halt(state, ui, err)
	}
	xml, err := dom.Marshal()
	if err != nil {
		return steps.Halt(state, ui, err)
	}
	log.Printf("libvirt domain XML:\n%s", xml)
	ui.Say(fmt.Sprintf("Starting domain %s (%s, %s, %s, %d CPUs, %d MiB); serial console logged on the hypervisor to %s",
		c.VMName, spec.Type, c.MachineType, c.Firmware, c.CPUs, c.MemoryMB, spec.SerialLog))
	if err := driver.DefineAndStart(xml); err != nil {
		// A defined domain that failed to start is still ours to remove.
		s.defined = true
		return steps.Halt(state, ui, err)
	}
	s.defined = true
	if live := liveDomain(driver, c.VMName); live != nil {
		if live.OS != nil && live.OS.Loader != nil && live.OS.Loader.Path != "" {
			state.Put(stateEFIFirmwareCode, live.OS.Loader.Path)
		}
		if live.OS != nil && live.OS.NVRam != nil && live.OS.NVRam.NVRam != "" {
			state.Put(stateNVRAMPath, live.OS.NVRam.NVRam)
		}
		state.Put(stateDomainUUID, live.UUID)
		sayVNC(ui, live, c)
	}
	state.Put(stateMAC, spec.MAC)
	state.Put(stateDomainName, c.VMName)
	return multistep.ActionContinue
}

// vncListen is the address of the domain's VNC display, "" without one.
func vncListen(c *Config) string {
	if !c.VNC {
		return ""
	}
	return c.VNCBindAddress
}

// sayVNC prints where the VNC display of the live domain listens: libvirt
// picks the port (autoport) from its qemu.conf range.
func sayVNC(ui packersdk.Ui, live *libvirtxml.Domain, c *Config) {
	if !c.VNC || live.Devices == nil {
		return
	}
	for _, g := range live.Devices.Graphics {
		if g.VNC != nil && g.VNC.Port > 0 {
			where := "the hypervisor's"
			if c.uri == nil || isLocalURI(c.uri) {
				where = "this machine's"
			}
			ui.Say(fmt.Sprintf("The domain's screen is served over VNC on %s %s:%d (vncviewer %s::%d)",
				where, c.VNCBindAddress, g.VNC.Port, c.VNCBindAddress, g.VNC.Port))
		}
	}
}

// hostAddresses returns WinbakeHostIP and WinbakeHostBindIP: 10.0.2.2 and
// the hypervisor's 127.0.0.1 on the user-mode network, the libvirt
// network's own address, or a bridge's address (read on this machine for
// a local hypervisor; the hypervisor's address from the URI otherwise).
func (s *stepStartDomain) hostAddresses(driver Driver, mode string) (hostIP, bindIP string, err error) {
	c := s.Config
	switch mode {
	case NetLibvirt:
		ip, err := driver.NetworkHostAddress(c.LibvirtNetwork)
		return ip, ip, err
	case NetBridge:
		if c.uri == nil || isLocalURI(c.uri) {
			return wbcommon.HostAddresses(qemuvm.NetworkBridge, c.Bridge)
		}
		addrs, err := net.LookupHost(c.uri.Hostname())
		if err != nil || len(addrs) == 0 {
			return "", "", fmt.Errorf("bridge: resolving the hypervisor %s for WinbakeHostIP: %v", c.uri.Hostname(), err)
		}
		return addrs[0], addrs[0], nil
	default:
		return wbcommon.UserNetHostIP, wbcommon.UserNetHostBindIP, nil
	}
}

// accelerator resolves `accelerator` to a libvirt domain type. On this
// machine the host probe decides; for a remote hypervisor only its
// domain capabilities can be asked.
func (s *stepStartDomain) accelerator(driver Driver) (domainType, reason string, err error) {
	c := s.Config
	if c.uri == nil || isLocalURI(c.uri) {
		accel, reason := s.Host.ChooseAccelerator(c.Accelerator)
		if accel == qemuvm.AccelKVM {
			return "kvm", reason, nil
		}
		return "qemu", reason + "; TCG", nil
	}
	switch c.Accelerator {
	case qemuvm.AccelKVM:
		return "kvm", "set by accelerator", nil
	case qemuvm.AccelTCG:
		return "qemu", "set by accelerator; TCG", nil
	}
	kvm, err := driver.KVMAvailable()
	if err != nil {
		return "", "", fmt.Errorf("accelerator: asking the hypervisor for its domain capabilities: %w", err)
	}
	if kvm {
		return "kvm", "the remote hypervisor offers KVM", nil
	}
	return "qemu", "the remote hypervisor offers no KVM; TCG", nil
}

// spec assembles the DomainSpec from the configuration and state.
func (s *stepStartDomain) spec(state multistep.StateBag, domainType string) (DomainSpec, error) {
	c := s.Config
	volumes, _ := state.Get(stateVolumes).(map[string]string)
	disk, _ := state.Get(stateDiskVolume).(string)
	mac, err := randomMAC()
	if err != nil {
		return DomainSpec{}, err
	}
	spec := DomainSpec{
		Name: c.VMName, Type: domainType, Machine: c.MachineType, CPUs: c.CPUs, MemoryMB: c.MemoryMB,
		Firmware: c.Firmware, SecureBoot: c.SecureBoot, TPM: c.TPMEnabled(),
		Pool: c.Pool, InstallISO: volumes["iso_path"], AnswerCD: volumes["cd_path"], AnswerFloppy: volumes["floppy_path"],
		Disk: disk, DiskInterface: c.DiskInterface, NetDevice: c.NetDevice, MAC: mac,
		NetworkMode: NetUser, ForwardAddress: c.ForwardAddress, GuestPort: s.GuestPort,
		Bridge: c.Bridge, Network: c.LibvirtNetwork, SerialLog: serialLogPath(c.VMName), VNCListen: vncListen(c),
	}
	if v := volumes[qemuvm.StateVirtioWinISO]; v != "" {
		spec.ExtraCDs = []string{v}
	}
	if c.EFIFirmwareCode != "" {
		spec.LoaderCode, spec.LoaderVars, spec.LoaderFormat = c.EFIFirmwareCode, c.EFIFirmwareVars, "raw"
		if filepath.Ext(c.EFIFirmwareCode) == ".qcow2" {
			spec.LoaderFormat = "qcow2"
		}
	}
	switch {
	case c.LibvirtNetwork != "":
		spec.NetworkMode = NetLibvirt
	case c.Network == qemuvm.NetworkBridge:
		spec.NetworkMode = NetBridge
	}
	if spec.NetworkMode == NetUser {
		port, ok := state.Get(qemuvm.StateHostPort).(int)
		if !ok {
			return spec, fmt.Errorf("no host port was reserved for the WinRM forward")
		}
		spec.HostPort = port
	}
	return spec, nil
}

// randomMAC returns a locally administered address in QEMU's 52:54:00
// prefix.
func randomMAC() (string, error) {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", b[0], b[1], b[2]), nil
}

// Cleanup stops the domain if it still runs and undefines it with its
// NVRAM and TPM state. On a local hypervisor the serial console log is
// moved into the output directory.
func (s *stepStartDomain) Cleanup(state multistep.StateBag) {
	if !s.defined {
		return
	}
	driver, _ := cleanupDriver(state)
	name := s.Config.VMName
	err := driver.Destroy(name)
	if err == nil {
		err = driver.Undefine(name)
	}
	if err != nil {
		leftBehind(state, "domain "+name, fmt.Sprintf("virsh destroy %s; virsh undefine --nvram --tpm %s", name, name), err)
	}
	s.defined = false
	if s.Config.uri == nil || isLocalURI(s.Config.uri) {
		src := serialLogPath(name)
		if err := moveFile(src, filepath.Join(s.Config.OutputDir, qemuvm.SerialLogName)); err != nil && !os.IsNotExist(err) {
			log.Printf("keeping the serial log %s: %v", src, err)
		}
	}
}

func moveFile(src, dst string) error {
	if err := qemuvm.CopyFile(src, dst, 0o644); err != nil {
		return err
	}
	return os.Remove(src)
}

// liveDomain reads the live domain XML: the UEFI code file libvirt chose
// (or was given), the NVRAM file it made, the domain's UUID. nil when the
// XML cannot be read.
func liveDomain(driver Driver, name string) *libvirtxml.Domain {
	xml, err := driver.DomainXML(name)
	if err != nil {
		log.Printf("reading the live XML of domain %s: %v", name, err)
		return nil
	}
	var d libvirtxml.Domain
	if err := d.Unmarshal(xml); err != nil {
		log.Printf("parsing the live XML of domain %s: %v", name, err)
		return nil
	}
	return &d
}
