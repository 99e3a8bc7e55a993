package qemuvm

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strings"
	"time"
)

// ARPTable is the kernel's IPv4 neighbour table.
const ARPTable = "/proc/net/arp"

// RandomMAC returns a MAC address in QEMU's locally administered
// 52:54:00 range.
func RandomMAC() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", b[0], b[1], b[2])
}

// LookupGuestAddress returns the IPv4 address the host's neighbour table
// (arpTable, as /proc/net/arp) holds for mac on device, "" when none. The
// entry appears once the guest has talked to the host, which its DHCP
// lease does.
func LookupGuestAddress(arpTable, mac, device string) (string, error) {
	b, err := os.ReadFile(arpTable)
	if err != nil {
		return "", err
	}
	for i, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		// IP address, HW type, Flags, HW address, Mask, Device
		if i == 0 || len(f) < 6 {
			continue
		}
		if strings.EqualFold(f[3], mac) && f[5] == device && f[2] != "0x0" {
			return f[0], nil
		}
	}
	return "", nil
}

// WaitGuestAddress polls the neighbour table until the guest's address
// appears or ctx ends.
func WaitGuestAddress(ctx context.Context, arpTable, mac, device string) (string, error) {
	for {
		ip, err := LookupGuestAddress(arpTable, mac, device)
		if err != nil {
			return "", err
		}
		if ip != "" {
			return ip, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no address for the guest's MAC %s on %s in %s (no DHCP lease yet?); set winrm_host: %w", mac, device, arpTable, ctx.Err())
		case <-time.After(2 * time.Second):
		}
	}
}
