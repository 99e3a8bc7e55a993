package qemuvm

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testio"
)

func TestVMSpecArgsBridge(t *testing.T) {
	spec := baseSpec()
	spec.Network, spec.Bridge, spec.MAC, spec.HostPort = NetworkBridge, "br0", "52:54:00:12:34:56", 0
	args, err := spec.Args()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(Flatten(args), " ")
	if !strings.Contains(got, "-netdev bridge,id=n0,br=br0 -device virtio-net-pci,mac=52:54:00:12:34:56,netdev=n0") {
		t.Errorf("bridge NIC missing:\n%s", got)
	}
	if strings.Contains(got, "hostfwd") || strings.Contains(got, "user,") {
		t.Errorf("a bridge VM got a user-mode network:\n%s", got)
	}
}

// The user-mode network must stay unrestricted, or 10.0.2.2 (WinbakeHostIP)
// would not reach the host.
func TestVMSpecArgsUserNetworkNotRestricted(t *testing.T) {
	args, err := baseSpec().Args()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range args {
		if a.Flag == "-netdev" && (!strings.HasPrefix(a.Value, "user,") || strings.Contains(a.Value, "restrict")) {
			t.Errorf("-netdev %s", a.Value)
		}
	}
}

func TestLookupGuestAddress(t *testing.T) {
	arp := filepath.Join(t.TempDir(), "arp")
	testio.WriteFile(t, arp, `IP address       HW type     Flags       HW address            Mask     Device
192.168.122.50   0x1         0x2         52:54:00:aa:bb:cc     *        br0
192.168.122.51   0x1         0x0         52:54:00:dd:ee:ff     *        br0
10.0.0.7         0x1         0x2         52:54:00:aa:bb:cc     *        eth0
`)
	for _, tc := range []struct{ mac, dev, want string }{
		{"52:54:00:AA:BB:CC", "br0", "192.168.122.50"},
		{"52:54:00:aa:bb:cc", "eth0", "10.0.0.7"},
		{"52:54:00:dd:ee:ff", "br0", ""}, // incomplete entry
		{"52:54:00:00:00:01", "br0", ""},
	} {
		got, err := LookupGuestAddress(arp, tc.mac, tc.dev)
		if err != nil || got != tc.want {
			t.Errorf("%s on %s: %q, %v; want %q", tc.mac, tc.dev, got, err, tc.want)
		}
	}
	if _, err := LookupGuestAddress(filepath.Join(t.TempDir(), "none"), "x", "br0"); !os.IsNotExist(err) {
		t.Errorf("missing table: %v", err)
	}
	if mac := RandomMAC(); !regexp.MustCompile(`^52:54:00(:[0-9a-f]{2}){3}$`).MatchString(mac) {
		t.Errorf("MAC %s", mac)
	}
}
