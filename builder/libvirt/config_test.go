package libvirt

import (
	"strings"
	"testing"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
)

func testConfig() map[string]interface{} {
	return map[string]interface{}{
		"iso_url":           "testdata/win.iso",
		"iso_checksum":      "none",
		"image_name":        "Windows Server 2022 SERVERDATACENTER",
		"packer_build_name": "win",
	}
}

func TestConfigDefaults(t *testing.T) {
	var c Config
	if _, err := c.Prepare(testConfig()); err != nil {
		t.Fatal(err)
	}
	if c.LibvirtURI != "qemu:///system" || c.uri == nil || c.Pool != "default" || c.LibvirtNetwork != "" || !c.usesForward() ||
		c.ForwardAddress != "127.0.0.1" || c.AddressSource != AddressARP {
		t.Errorf("uri %q pool %q net %q forward %q source %q", c.LibvirtURI, c.Pool, c.LibvirtNetwork, c.ForwardAddress, c.AddressSource)
	}
	if c.VMName != "packer-win" || c.OutputDir != "output-win" || c.Firmware != qemuvm.FirmwareUEFI || !c.TPMEnabled() || c.SecureBoot {
		t.Errorf("vm %q out %q firmware %q", c.VMName, c.OutputDir, c.Firmware)
	}
	if c.BootWait != 3*time.Second || len(c.bootKeys) != 7 {
		t.Errorf("boot wait %s keys %d", c.BootWait, len(c.bootKeys))
	}

	raw := testConfig()
	raw["libvirt_network"] = "default"
	raw["libvirt_uri"] = "qemu+ssh://builder@virthost:2222/system?keyfile=/k"
	var n Config
	if _, err := n.Prepare(raw); err != nil {
		t.Fatal(err)
	}
	if n.usesForward() || n.AddressSource != AddressLease || n.uri.Hostname() != "virthost" || isLocalURI(n.uri) {
		t.Errorf("libvirt network: forward %v source %q host %q", n.usesForward(), n.AddressSource, n.uri.Hostname())
	}

	raw = testConfig()
	raw["libvirt_uri"] = "qemu+tcp://127.0.0.1/system"
	var local Config
	if _, err := local.Prepare(raw); err != nil {
		t.Fatal(err)
	}
	if !isLocalURI(local.uri) || local.ForwardAddress != "127.0.0.1" {
		t.Errorf("loopback tcp URI should count as local: %v %q", isLocalURI(local.uri), local.ForwardAddress)
	}
}

func TestConfigRejects(t *testing.T) {
	cases := []struct {
		name  string
		set   map[string]interface{}
		field string
	}{
		{"uri scheme", map[string]interface{}{"libvirt_uri": "xen:///system"}, "libvirt_uri:"},
		{"uri transport", map[string]interface{}{"libvirt_uri": "qemu+pigeon://h/system"}, "libvirt_uri:"},
		{"uri host", map[string]interface{}{"libvirt_uri": "qemu+tcp:///system"}, "libvirt_uri:"},
		{"uri path", map[string]interface{}{"libvirt_uri": "qemu:///sys"}, "libvirt_uri:"},
		{"address source", map[string]interface{}{"address_source": "dns"}, "address_source:"},
		{"remote user net without forward", map[string]interface{}{"libvirt_uri": "qemu+tcp://virthost/system"}, "forward_address:"},
		{"forward not IP", map[string]interface{}{"forward_address": "virthost"}, "forward_address:"},
		{"forward with libvirt network", map[string]interface{}{"libvirt_network": "default", "forward_address": "0.0.0.0"}, "forward_address:"},
		{"network and libvirt network", map[string]interface{}{"libvirt_network": "default", "network": "user"}, "libvirt_network:"},
		{"secure boot on bios", map[string]interface{}{"firmware": "bios", "secure_boot": true}, "secure_boot:"},
		{"secure boot with loader", map[string]interface{}{"secure_boot": true, "efi_firmware_code": "/c.fd", "efi_firmware_vars": "/v.fd"}, "secure_boot:"},
		{"uefi on pc", map[string]interface{}{"machine_type": "pc"}, "machine_type:"},
		{"vm name", map[string]interface{}{"vm_name": "a/b"}, "vm_name:"},
		{"boot command", map[string]interface{}{"boot_command": []string{"<hyper>"}}, "boot_command:"},
		{"communicator", map[string]interface{}{"communicator": "ssh"}, "communicator:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := testConfig()
			for k, v := range tc.set {
				raw[k] = v
			}
			var c Config
			_, err := c.Prepare(raw)
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %v should name %s", err, tc.field)
			}
		})
	}
}

// WinRM speaks HTTP only through the forward on this host's loopback; a
// forward on another address, a remote hypervisor, a bridge or a libvirt
// network get HTTPS on 5986.
func TestConfigWinRMTransport(t *testing.T) {
	for _, tc := range []struct {
		name  string
		set   map[string]interface{}
		https bool
	}{
		{"local user network", nil, false},
		{"winrm_use_ssl", map[string]interface{}{"winrm_use_ssl": true}, true},
		{"forward on every address", map[string]interface{}{"forward_address": "0.0.0.0"}, true},
		{"remote hypervisor", map[string]interface{}{"libvirt_uri": "qemu+ssh://builder@hv.example/system", "forward_address": "192.0.2.10"}, true},
		{"bridge", map[string]interface{}{"network": "bridge", "bridge": "br0"}, true},
		{"libvirt network", map[string]interface{}{"libvirt_network": "default"}, true},
	} {
		raw := testConfig()
		for k, v := range tc.set {
			raw[k] = v
		}
		var c Config
		if _, err := c.Prepare(raw); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		wantPort := 5985
		if tc.https {
			wantPort = 5986
		}
		if c.WinRMOverHTTPS() != tc.https || c.Comm.WinRMUseSSL != tc.https || c.Comm.WinRMPort != wantPort {
			t.Errorf("%s: https %t, winrm_use_ssl %t, port %d", tc.name, c.WinRMOverHTTPS(), c.Comm.WinRMUseSSL, c.Comm.WinRMPort)
		}
	}
}
