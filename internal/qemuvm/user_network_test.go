package qemuvm

import (
	"net/netip"
	"strings"
	"testing"
)

func TestVMSpecArgsUserNetworkWithMetadataForward(t *testing.T) {
	spec := baseSpec()
	spec.UserNetwork = &UserNetwork{
		Net:           netip.MustParsePrefix("169.254.169.0/24"),
		GuestForwards: []GuestForward{{Addr: netip.MustParseAddr("169.254.169.254"), Port: 80, HostAddr: "127.0.0.1:40123"}},
	}
	args, err := spec.Args()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(Flatten(args), " ")
	want := "-netdev user,id=n0,hostfwd=tcp:127.0.0.1:3333-:5985,net=169.254.169.0/24,dhcpstart=169.254.169.15,guestfwd=tcp:169.254.169.254:80-tcp:127.0.0.1:40123 "
	if !strings.Contains(got, want) {
		t.Errorf("args:\n%s\nwant %q", got, want)
	}
}

func TestUserNetworkRefusesForwardsQEMUCannotMake(t *testing.T) {
	for _, tc := range []struct {
		net, addr, want string
	}{
		{"", "169.254.169.254", "inside the user network 10.0.2.0/24"},
		{"169.254.169.0/24", "169.254.169.2", "QEMU's host"},
		{"169.254.169.0/24", "169.254.169.3", "DNS"},
		{"169.254.169.0/25", "169.254.169.100", "at least 256 addresses"},
		{"169.254.168.0/24", "169.254.169.254", "inside the user network 169.254.168.0/24"},
		{"fd00::/64", "fd00::1", "IPv4"},
	} {
		n := &UserNetwork{GuestForwards: []GuestForward{{Addr: netip.MustParseAddr(tc.addr), Port: 80, HostAddr: "127.0.0.1:1"}}}
		if tc.net != "" {
			n.Net = netip.MustParsePrefix(tc.net)
		}
		if _, err := n.netdevOptions(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s in %s: %v, want %q", tc.addr, tc.net, err, tc.want)
		}
	}
}
