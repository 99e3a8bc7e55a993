package qemuvm

import (
	"fmt"
	"net/netip"
	"strings"
)

// StateUserNetwork holds the *UserNetwork a VM on the user-mode network
// gets instead of QEMU's default 10.0.2.0/24 (optional).
const StateUserNetwork = "user_network"

// UserNetwork is a QEMU user-mode network other than the default: its
// range, and TCP connections the guest opens to an address inside it that
// QEMU forwards to the host.
type UserNetwork struct {
	// Net is the network, e.g. 169.254.169.0/24 so that the guest reaches
	// the cloud metadata address 169.254.169.254. QEMU's host is the
	// network's .2, its DNS server .3, and DHCP hands out from .15.
	Net netip.Prefix
	// GuestForwards are carried to host servers (guestfwd).
	GuestForwards []GuestForward
}

// GuestForward carries the guest's TCP connections to Addr:Port to the
// server at HostAddr (host:port) over one stream, which QEMU opens when it
// starts; the server must be listening then.
type GuestForward struct {
	Addr     netip.Addr
	Port     int
	HostAddr string
}

// netdevOptions are the -netdev user options for n ("" for the default
// network). Guest forwards must be inside the network and not QEMU's own
// host, DNS or DHCP addresses.
func (n *UserNetwork) netdevOptions() (string, error) {
	if n == nil {
		return "", nil
	}
	var opts []string
	if n.Net.IsValid() {
		p := n.Net.Masked()
		if !p.Addr().Is4() || p.Bits() > 24 {
			return "", fmt.Errorf("user network %s: QEMU needs an IPv4 network of at least 256 addresses", n.Net)
		}
		first := p.Addr().As4()
		dhcp := first
		dhcp[3] += 15
		opts = append(opts, "net="+p.String(), "dhcpstart="+netip.AddrFrom4(dhcp).String())
	}
	net := n.Net.Masked()
	if !net.IsValid() {
		net = netip.MustParsePrefix("10.0.2.0/24")
	}
	reserved := map[byte]string{0: "the network address", 2: "QEMU's host", 3: "QEMU's DNS server", 255: "the broadcast address"}
	for _, f := range n.GuestForwards {
		if !net.Contains(f.Addr) {
			return "", fmt.Errorf("guest forward %s:%d: QEMU forwards only addresses inside the user network %s", f.Addr, f.Port, net)
		}
		if what, ok := reserved[f.Addr.As4()[3]]; ok && net.Bits() == 24 {
			return "", fmt.Errorf("guest forward %s:%d: the address is %s", f.Addr, f.Port, what)
		}
		if strings.ContainsAny(f.HostAddr, ", ") {
			return "", fmt.Errorf("guest forward %s:%d: host address %q", f.Addr, f.Port, f.HostAddr)
		}
		opts = append(opts, fmt.Sprintf("guestfwd=tcp:%s:%d-tcp:%s", f.Addr, f.Port, f.HostAddr))
	}
	return strings.Join(opts, ","), nil
}
