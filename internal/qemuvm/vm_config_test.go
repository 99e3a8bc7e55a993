package qemuvm

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
)

func TestVMConfigDefaults(t *testing.T) {
	var c VMConfig
	if errs := c.Prepare(&interpolate.Context{}); len(errs) != 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
	if c.Firmware != FirmwareUEFI || !c.TPMEnabled() || c.MachineType != "q35" || c.CPUs != 2 || c.MemoryMB != 4096 ||
		c.DiskSizeMB != 65536 || c.DiskInterface != DiskVirtioBlk || c.NetDevice != NetVirtio || c.Accelerator != AccelAuto ||
		c.HostPortMin != 2222 || c.HostPortMax != 4444 || c.ShutdownTimeout != 5*time.Minute || c.Network != NetworkUser {
		t.Errorf("defaults: %+v", c)
	}
}

func TestVMConfigBIOSHasNoTPMByDefault(t *testing.T) {
	c := VMConfig{Firmware: FirmwareBIOS}
	if errs := c.Prepare(&interpolate.Context{}); len(errs) != 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
	if c.TPMEnabled() {
		t.Error("BIOS VM got a TPM")
	}
}

func TestVMConfigRejects(t *testing.T) {
	yes := true
	cases := []struct {
		name   string
		config VMConfig
		field  string
		says   string
	}{
		{"unknown firmware", VMConfig{Firmware: "efi"}, "firmware:", `"uefi" or "bios"`},
		{"TPM on BIOS", VMConfig{Firmware: FirmwareBIOS, TPM: &yes}, "tpm:", `firmware = "uefi"`},
		{"OVMF on BIOS", VMConfig{Firmware: FirmwareBIOS, EFIFirmwareCode: "a", EFIFirmwareVars: "b"}, "efi_firmware_code:", `firmware = "uefi"`},
		{"code without vars", VMConfig{EFIFirmwareCode: "a"}, "efi_firmware_vars:", "both"},
		{"no CPUs", VMConfig{CPUs: -1}, "cpus:", "1 to 64"},
		{"too many CPUs", VMConfig{CPUs: 65}, "cpus:", "1 to 64"},
		{"too little memory", VMConfig{MemoryMB: 256}, "memory:", "512 to"},
		{"unknown disk bus", VMConfig{DiskInterface: "ide"}, "disk_interface:", `"sata"`},
		{"unknown NIC", VMConfig{NetDevice: "rtl8139"}, "net_device:", `"e1000"`},
		{"unknown accelerator", VMConfig{Accelerator: "hvf"}, "accelerator:", `"tcg"`},
		{"port out of range", VMConfig{HostPortMin: 70000}, "host_port_min:", "1 to 65535"},
		{"empty port range", VMConfig{HostPortMin: 3000, HostPortMax: 3000}, "host_port_max:", "above host_port_min"},
		{"unknown network", VMConfig{Network: "nat"}, "network:", `"user" or "bridge"`},
		{"bridge network without bridge", VMConfig{Network: NetworkBridge}, "bridge:", `"br0"`},
		{"bridge on user network", VMConfig{Bridge: "br0"}, "bridge:", `network = "bridge"`},
		{"negative timeout", VMConfig{ShutdownTimeout: -time.Second}, "shutdown_timeout:", "negative"},
		{"VNC settings without vnc", VMConfig{VNCPortMin: 5901}, "vnc_bind_address, vnc_port_min, vnc_port_max:", "vnc = true"},
		{"VNC on a name", VMConfig{VNC: true, VNCBindAddress: "localhost"}, "vnc_bind_address:", "not an IP address"},
		{"VNC below 5900", VMConfig{VNC: true, VNCPortMin: 5000}, "vnc_port_min, vnc_port_max:", "from 5900 up"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := tc.config.Prepare(&interpolate.Context{})
			if len(errs) != 1 {
				t.Fatalf("want exactly one error, got %d: %v", len(errs), errs)
			}
			if msg := errs[0].Error(); !strings.HasPrefix(msg, tc.field) || !strings.Contains(msg, tc.says) {
				t.Fatalf("error %q should start with %q and say %q", msg, tc.field, tc.says)
			}
		})
	}
}

func TestVMConfigVNC(t *testing.T) {
	c := VMConfig{VNC: true}
	if errs := c.Prepare(&interpolate.Context{}); len(errs) != 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
	if got := c.VNCDisplay(); got != "127.0.0.1:0,to=100" {
		t.Errorf("VNCDisplay() = %q, want 127.0.0.1 from display 0 (port 5900) to 100 (port 6000)", got)
	}
	off := VMConfig{}
	if errs := off.Prepare(&interpolate.Context{}); len(errs) != 0 || off.VNCDisplay() != "" {
		t.Errorf("without vnc: %v, display %q", errs, off.VNCDisplay())
	}
}
