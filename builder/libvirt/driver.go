package libvirt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"
)

// Driver is what the steps ask of libvirt. The methods are specific (a
// volume, a domain by name) so that steps carry no RPC details.
type Driver interface {
	// CheckPool returns an error naming `pool` unless the pool exists and
	// is active.
	CheckPool(pool string) error
	// VolumeExists reports whether pool holds a volume called name.
	VolumeExists(pool, name string) (bool, error)
	// CreateVolume creates a volume of capacity bytes in format ("raw" or
	// "qcow2").
	CreateVolume(pool, name, format string, capacity uint64) error
	// UploadVolume writes size bytes from r into the volume.
	UploadVolume(pool, name string, r io.Reader, size uint64) error
	// VolumeSize returns the volume's size in bytes as downloaded (its
	// allocation on the hypervisor).
	VolumeSize(pool, name string) (uint64, error)
	// DownloadVolume copies the volume's content to w.
	DownloadVolume(pool, name string, w io.Writer) error
	// DeleteVolume removes the volume.
	DeleteVolume(pool, name string) error

	// DomainExists reports whether a domain called name is defined.
	DomainExists(name string) (bool, error)
	// DefineDomain defines the domain (persistently) and starts it.
	DefineAndStart(xml string) error
	// DomainXML returns the live XML of the running domain, with what
	// libvirt filled in (the UEFI loader it chose, ...).
	DomainXML(name string) (string, error)
	// DomainState returns the domain's state (golibvirt.DomainRunning,
	// DomainShutoff, ...).
	DomainState(name string) (golibvirt.DomainState, error)
	// Shutdown asks the guest to power off (ACPI power button).
	Shutdown(name string) error
	// Destroy stops the domain at once if it runs.
	Destroy(name string) error
	// Undefine removes the domain's definition with its NVRAM and TPM
	// state.
	Undefine(name string) error
	// SendKeys presses and releases the Linux keycodes together.
	SendKeys(name string, codes []uint32) error
	// InterfaceAddresses returns the IPv4 addresses of the NIC with mac
	// reported by source ("lease", "arp" or "agent").
	InterfaceAddresses(name, mac, source string) ([]string, error)
	// NetworkHostAddress returns the hypervisor's IPv4 address on the
	// libvirt network (its bridge address).
	NetworkHostAddress(network string) (string, error)
	// KVMAvailable reports whether the hypervisor's domain capabilities
	// offer KVM for x86_64 q35.
	KVMAvailable() (bool, error)
	// Close disconnects.
	Close() error
}

// RPCDriver is the Driver over libvirt's RPC protocol (go-libvirt).
type RPCDriver struct {
	l   *golibvirt.Libvirt
	uri *url.URL
}

var _ Driver = (*RPCDriver)(nil)

// Connect dials uri with go-libvirt's dialer for its transport.
func Connect(uri *url.URL) (*RPCDriver, error) {
	l, err := golibvirt.ConnectToURI(uri)
	if err != nil {
		return nil, fmt.Errorf("libvirt_uri: connecting to %s: %w", redactURI(uri), err)
	}
	return &RPCDriver{l: l, uri: uri}, nil
}

var _ reconnector = (*RPCDriver)(nil)

// Connected reports whether the connection to libvirtd is up.
func (d *RPCDriver) Connected() bool { return d.l.IsConnected() }

// Reconnect dials libvirt_uri again, replacing a lost connection.
func (d *RPCDriver) Reconnect() error {
	l, err := golibvirt.ConnectToURI(d.uri)
	if err != nil {
		return fmt.Errorf("connecting to %s again: %w", redactURI(d.uri), err)
	}
	_ = d.l.Disconnect()
	d.l = l
	return nil
}

// redactURI drops a password from the URI before it is shown.
func redactURI(u *url.URL) string { return u.Redacted() }

func isNotFound(err error, code golibvirt.ErrorNumber) bool {
	return golibvirt.IsNotFound(err) || hasCode(err, code)
}

func hasCode(err error, code golibvirt.ErrorNumber) bool {
	var e golibvirt.Error
	return errors.As(err, &e) && e.Code == uint32(code)
}

func (d *RPCDriver) pool(name string) (golibvirt.StoragePool, error) {
	p, err := d.l.StoragePoolLookupByName(name)
	if err != nil {
		if isNotFound(err, golibvirt.ErrNoStoragePool) {
			return p, fmt.Errorf("pool: storage pool %q does not exist on the hypervisor; create it (for example a dir pool: virsh pool-define-as %s dir --target /var/lib/libvirt/images && virsh pool-start %s) or name an existing one", name, name, name)
		}
		return p, fmt.Errorf("pool: looking up storage pool %q: %w", name, err)
	}
	return p, nil
}

func (d *RPCDriver) CheckPool(name string) error {
	p, err := d.pool(name)
	if err != nil {
		return err
	}
	active, err := d.l.StoragePoolIsActive(p)
	if err != nil {
		return fmt.Errorf("pool: %q: %w", name, err)
	}
	if active == 0 {
		return fmt.Errorf("pool: storage pool %q exists but is not active; start it (virsh pool-start %s)", name, name)
	}
	// Volumes created outside libvirt (or by an earlier libvirtd) are
	// only seen after a refresh.
	_ = d.l.StoragePoolRefresh(p, 0)
	return nil
}

func (d *RPCDriver) vol(pool, name string) (golibvirt.StorageVol, error) {
	p, err := d.pool(pool)
	if err != nil {
		return golibvirt.StorageVol{}, err
	}
	return d.l.StorageVolLookupByName(p, name)
}

func (d *RPCDriver) VolumeExists(pool, name string) (bool, error) {
	_, err := d.vol(pool, name)
	if err == nil {
		return true, nil
	}
	if isNotFound(err, golibvirt.ErrNoStorageVol) {
		return false, nil
	}
	return false, err
}

func (d *RPCDriver) CreateVolume(pool, name, format string, capacity uint64) error {
	p, err := d.pool(pool)
	if err != nil {
		return err
	}
	vol := libvirtxml.StorageVolume{
		Name:       name,
		Capacity:   &libvirtxml.StorageVolumeSize{Value: capacity, Unit: "bytes"},
		Allocation: &libvirtxml.StorageVolumeSize{Value: 0, Unit: "bytes"},
		Target:     &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: format}},
	}
	xml, err := vol.Marshal()
	if err != nil {
		return err
	}
	if _, err := d.l.StorageVolCreateXML(p, xml, 0); err != nil {
		return fmt.Errorf("creating volume %s in pool %s: %w", name, pool, err)
	}
	return nil
}

func (d *RPCDriver) UploadVolume(pool, name string, r io.Reader, size uint64) error {
	v, err := d.vol(pool, name)
	if err != nil {
		return err
	}
	if err := d.l.StorageVolUpload(v, r, 0, size, 0); err != nil {
		return fmt.Errorf("uploading volume %s: %w", name, err)
	}
	return nil
}

func (d *RPCDriver) VolumeSize(pool, name string) (uint64, error) {
	v, err := d.vol(pool, name)
	if err != nil {
		return 0, err
	}
	_, _, allocation, err := d.l.StorageVolGetInfo(v)
	return allocation, err
}

func (d *RPCDriver) DownloadVolume(pool, name string, w io.Writer) error {
	v, err := d.vol(pool, name)
	if err != nil {
		return err
	}
	if err := d.l.StorageVolDownload(v, w, 0, 0, 0); err != nil {
		return fmt.Errorf("downloading volume %s: %w", name, err)
	}
	return nil
}

func (d *RPCDriver) DeleteVolume(pool, name string) error {
	v, err := d.vol(pool, name)
	if err != nil {
		if isNotFound(err, golibvirt.ErrNoStorageVol) {
			return nil
		}
		return err
	}
	return d.l.StorageVolDelete(v, 0)
}

func (d *RPCDriver) DomainExists(name string) (bool, error) {
	_, err := d.l.DomainLookupByName(name)
	if err == nil {
		return true, nil
	}
	if isNotFound(err, golibvirt.ErrNoDomain) {
		return false, nil
	}
	return false, err
}

func (d *RPCDriver) DefineAndStart(xml string) error {
	dom, err := d.l.DomainDefineXML(xml)
	if err != nil {
		return fmt.Errorf("defining the domain: %w", err)
	}
	if err := d.l.DomainCreate(dom); err != nil {
		return fmt.Errorf("starting the domain: %w", err)
	}
	return nil
}

func (d *RPCDriver) DomainXML(name string) (string, error) {
	dom, err := d.l.DomainLookupByName(name)
	if err != nil {
		return "", err
	}
	return d.l.DomainGetXMLDesc(dom, 0)
}

func (d *RPCDriver) DomainState(name string) (golibvirt.DomainState, error) {
	dom, err := d.l.DomainLookupByName(name)
	if err != nil {
		return 0, err
	}
	state, _, err := d.l.DomainGetState(dom, 0)
	return golibvirt.DomainState(state), err
}

func (d *RPCDriver) Shutdown(name string) error {
	dom, err := d.l.DomainLookupByName(name)
	if err != nil {
		return err
	}
	return d.l.DomainShutdownFlags(dom, golibvirt.DomainShutdownAcpiPowerBtn)
}

func (d *RPCDriver) Destroy(name string) error {
	dom, err := d.l.DomainLookupByName(name)
	if err != nil {
		if isNotFound(err, golibvirt.ErrNoDomain) {
			return nil
		}
		return err
	}
	if err := d.l.DomainDestroy(dom); err != nil && !hasCode(err, golibvirt.ErrOperationInvalid) {
		return err
	}
	return nil
}

func (d *RPCDriver) Undefine(name string) error {
	dom, err := d.l.DomainLookupByName(name)
	if err != nil {
		if isNotFound(err, golibvirt.ErrNoDomain) {
			return nil
		}
		return err
	}
	return d.l.DomainUndefineFlags(dom, golibvirt.DomainUndefineNvram|golibvirt.DomainUndefineTpm|golibvirt.DomainUndefineManagedSave)
}

func (d *RPCDriver) SendKeys(name string, codes []uint32) error {
	dom, err := d.l.DomainLookupByName(name)
	if err != nil {
		return err
	}
	return d.l.DomainSendKey(dom, uint32(golibvirt.KeycodeSetLinux), 100, codes, 0)
}

func (d *RPCDriver) InterfaceAddresses(name, mac, source string) ([]string, error) {
	dom, err := d.l.DomainLookupByName(name)
	if err != nil {
		return nil, err
	}
	src := map[string]golibvirt.DomainInterfaceAddressesSource{
		AddressLease: golibvirt.DomainInterfaceAddressesSrcLease,
		AddressARP:   golibvirt.DomainInterfaceAddressesSrcArp,
		AddressAgent: golibvirt.DomainInterfaceAddressesSrcAgent,
	}[source]
	ifaces, err := d.l.DomainInterfaceAddresses(dom, uint32(src), 0)
	if err != nil {
		return nil, err
	}
	var addrs []string
	for _, iface := range ifaces {
		if len(iface.Hwaddr) == 0 || !strings.EqualFold(iface.Hwaddr[0], mac) {
			continue
		}
		for _, a := range iface.Addrs {
			if a.Type == int32(golibvirt.IPAddrTypeIpv4) {
				addrs = append(addrs, a.Addr)
			}
		}
	}
	return addrs, nil
}

func (d *RPCDriver) NetworkHostAddress(name string) (string, error) {
	n, err := d.l.NetworkLookupByName(name)
	if err != nil {
		if isNotFound(err, golibvirt.ErrNoNetwork) {
			return "", fmt.Errorf("libvirt_network: network %q does not exist on the hypervisor; name an existing network or use user_networking = true", name)
		}
		return "", fmt.Errorf("libvirt_network: %q: %w", name, err)
	}
	active, err := d.l.NetworkIsActive(n)
	if err != nil {
		return "", fmt.Errorf("libvirt_network: %q: %w", name, err)
	}
	if active == 0 {
		return "", fmt.Errorf("libvirt_network: network %q is not active; start it (virsh net-start %s) or use user_networking = true", name, name)
	}
	doc, err := d.l.NetworkGetXMLDesc(n, 0)
	if err != nil {
		return "", fmt.Errorf("libvirt_network: %q: %w", name, err)
	}
	var nx libvirtxml.Network
	if err := nx.Unmarshal(doc); err != nil {
		return "", fmt.Errorf("libvirt_network: %q: %w", name, err)
	}
	for _, ip := range nx.IPs {
		if ip.Family == "" || ip.Family == "ipv4" {
			return ip.Address, nil
		}
	}
	return "", fmt.Errorf("libvirt_network: network %q has no IPv4 address on the hypervisor, so the guest cannot reach it; use a routed or NAT network, or user_networking = true", name)
}

func (d *RPCDriver) KVMAvailable() (bool, error) {
	caps, err := d.l.ConnectGetDomainCapabilities(golibvirt.OptString{}, golibvirt.OptString{"x86_64"}, golibvirt.OptString{"q35"}, golibvirt.OptString{"kvm"}, 0)
	if err != nil {
		// libvirt answers an error when KVM is not offered at all.
		return false, nil
	}
	var dc libvirtxml.DomainCaps
	if err := dc.Unmarshal(caps); err != nil {
		return false, err
	}
	return dc.Domain == "kvm", nil
}

func (d *RPCDriver) Close() error {
	return d.l.Disconnect()
}

// ctxReader stops a transfer when ctx ends (Ctrl-C), so that an upload
// of a large ISO does not keep Packer waiting.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// ctxWriter is ctxReader for downloads.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}
