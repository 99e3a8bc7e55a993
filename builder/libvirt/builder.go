package libvirt

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/url"
	"time"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/multistep/commonsteps"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	wbcommon "github.com/winbake/packer-plugin-winbake/builder/common"
	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// Builder installs Windows from an ISO into a qcow2 volume of a libvirt
// domain, on this machine or a remote hypervisor.
type Builder struct {
	config Config
	// connect and host are replaced in tests.
	connect func(*url.URL) (Driver, error)
	host    *qemuvm.HostPaths
	// swtpmDir replaces LibvirtSwtpmDir, arpTable wbcommon.ARPTable in
	// tests.
	swtpmDir, arpTable string
	// guestAddress is the address last reported to the user.
	guestAddress string
	// watchInterval replaces the domain watch's interval in tests.
	watchInterval time.Duration
}

func (b *Builder) ConfigSpec() hcldec.ObjectSpec { return b.config.FlatMapstructure().HCL2Spec() }

func (b *Builder) Prepare(raws ...interface{}) ([]string, []string, error) {
	warnings, err := b.config.Prepare(raws...)
	if err != nil {
		return nil, warnings, err
	}
	return wbcommon.GeneratedDataNames, warnings, nil
}

// Steps returns the build's step list for the prepared configuration.
func (b *Builder) Steps(host qemuvm.HostPaths) []multistep.Step {
	c := &b.config
	connect := b.connect
	if connect == nil {
		connect = func(u *url.URL) (Driver, error) { return Connect(u) }
	}
	guestPort := c.Comm.WinRMPort
	if guestPort == 0 {
		guestPort = 5985
	}
	diskName := c.VMName + ".qcow2"
	steps := []multistep.Step{
		&commonsteps.StepDownload{
			Checksum:    c.ISOChecksum,
			Description: "Windows install ISO",
			Extension:   c.TargetExtension,
			ResultKey:   "iso_path",
			TargetPath:  c.TargetPath,
			Url:         c.ISOUrls,
		},
		&wbcommon.StepCheckInstallImage{ImageName: c.ImageName},
	}
	if download := c.MediaConfig.VirtioDownloadStep(); download != nil {
		steps = append(steps, download, &wbcommon.StepCheckVirtioDrivers{})
	}
	steps = append(steps,
		&wbcommon.StepPrepareWinRM{Unattend: &c.UnattendConfig, Comm: &c.Comm},
		&wbcommon.StepCreateUnattendMedia{Unattend: &c.UnattendConfig, Media: &c.MediaConfig, Firmware: c.Firmware},
		&commonsteps.StepOutputDir{Force: c.PackerForce, Path: c.OutputDir},
		&stepConnectLibvirt{URI: c.uri, Pool: c.Pool, VMName: c.VMName, DiskName: diskName, connect: connect},
		&stepUploadMedia{Pool: c.Pool, VMName: c.VMName},
		&stepCreateDiskVolume{Pool: c.Pool, Name: diskName, SizeMB: c.DiskSizeMB, Keep: c.KeepInPool},
	)
	if c.usesForward() {
		steps = append(steps, &qemuvm.StepForwardPort{Min: c.HostPortMin, Max: c.HostPortMax})
	}
	steps = append(steps,
		&stepStartDomain{Config: c, Host: host, GuestPort: guestPort},
		&stepWatchDomain{Name: c.VMName, PowerOffEnds: c.Comm.Type == "none", Interval: b.watchInterval},
		&qemuvm.StepBootCommand{BootWait: c.BootWait, Keys: c.bootKeys, TCGKeys: c.bootKeysTCG, Sender: bootKeySender},
		&qemuvm.StepConnectWinRM{
			Config:    &c.Comm,
			Host:      b.winrmHost,
			WinRMPort: b.winrmPort(guestPort),
		},
		new(commonsteps.StepProvision),
		&wbcommon.StepCheckGuestAgent{CommunicatorType: c.Comm.Type},
		&wbcommon.StepReadUpdatesRecord{CommunicatorType: c.Comm.Type},
		&stepShutdown{Timeout: c.ShutdownTimeout},
		&stepKeepFirmwareState{Config: c, SwtpmDir: b.swtpmDir},
		&stepDownloadDisk{Pool: c.Pool, OutputDir: c.OutputDir, Skip: c.KeepInPool},
		&stepWriteManifest{config: c},
	)
	return steps
}

// winrmHost is where WinRM is reached: the forward on the hypervisor with
// user networking, else the guest's address on the libvirt network,
// which StepConnect asks for until the guest has one.
func (b *Builder) winrmHost(state multistep.StateBag) (string, error) {
	c := &b.config
	if c.Comm.WinRMHost != "" {
		return c.Comm.WinRMHost, nil
	}
	if c.usesForward() {
		if ip := net.ParseIP(c.ForwardAddress); ip != nil && ip.IsUnspecified() {
			if h := c.uri.Hostname(); h != "" {
				return h, nil
			}
			return "127.0.0.1", nil
		}
		return c.ForwardAddress, nil
	}
	driver := state.Get(stateDriver).(Driver)
	name, _ := state.Get(stateDomainName).(string)
	mac, _ := state.Get(stateMAC).(string)
	addrs, err := driver.InterfaceAddresses(name, mac, c.AddressSource)
	if err != nil && c.AddressSource == AddressARP && (c.uri == nil || isLocalURI(c.uri)) && c.Bridge != "" {
		// libvirt reads the ARP table over netlink, which fails on some
		// kernels ("wrong nlmsg len"); on a local hypervisor the same
		// table is /proc/net/arp.
		table := b.arpTable
		if table == "" {
			table = qemuvm.ARPTable
		}
		log.Printf("libvirt's ARP lookup failed (%v); reading %s", err, table)
		ip, lerr := qemuvm.LookupGuestAddress(table, mac, c.Bridge)
		if lerr == nil && ip != "" {
			b.reportGuestAddress(state, ip, table)
			return ip, nil
		}
	}
	if err != nil {
		return "", fmt.Errorf("address_source %s: %w", c.AddressSource, err)
	}
	if len(addrs) == 0 {
		return "", fmt.Errorf("address_source %s: the guest (MAC %s) has no IPv4 address yet", c.AddressSource, mac)
	}
	b.reportGuestAddress(state, addrs[0], "address_source = "+c.AddressSource)
	return addrs[0], nil
}

// reportGuestAddress tells the user where WinRM goes, once per address (a
// guest that reboots may get another one).
func (b *Builder) reportGuestAddress(state multistep.StateBag, ip, source string) {
	if ip == b.guestAddress {
		return
	}
	b.guestAddress = ip
	if ui, ok := state.Get("ui").(packersdk.Ui); ok {
		ui.Say(fmt.Sprintf("The guest's address is %s (from %s)", ip, source))
	}
}

func (b *Builder) winrmPort(guestPort int) func(multistep.StateBag) (int, error) {
	return func(state multistep.StateBag) (int, error) {
		if !b.config.usesForward() {
			return guestPort, nil
		}
		port, ok := state.Get(qemuvm.StateHostPort).(int)
		if !ok {
			return 0, errors.New("no host port was forwarded to WinRM")
		}
		return port, nil
	}
}

func (b *Builder) Run(ctx context.Context, ui packersdk.Ui, hook packersdk.Hook) (packersdk.Artifact, error) {
	c := &b.config
	host := qemuvm.DefaultHostPaths
	if b.host != nil {
		host = *b.host
	}
	// The domain watch ends the build through this context when the
	// domain stops or libvirtd is lost.
	ctx, stopBuild := context.WithCancel(ctx)
	defer stopBuild()
	state := new(multistep.BasicStateBag)
	state.Put(qemuvm.StateStopBuild, context.CancelFunc(stopBuild))
	state.Put("config", c)
	state.Put("debug", c.PackerDebug)
	state.Put("hook", hook)
	state.Put("ui", ui)

	runner := commonsteps.NewRunnerWithPauseFn(b.Steps(host), c.PackerConfig, ui, state)
	runner.Run(ctx, state)

	if err := steps.Failure(state, "build"); err != nil {
		return nil, err
	}
	art, ok := state.Get(stateArtifact).(*Artifact)
	if !ok {
		return nil, fmt.Errorf("the build produced no artifact")
	}
	return art, nil
}
