package glance

import (
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/winbake/packer-plugin-winbake/internal/image"
)

// Properties derived from the build, before the user's own properties.
// Vocabulary: Glance "Useful image properties" and the compute metadefs.
func deriveProperties(c *Config, src *source) map[string]string {
	if src.Linux != nil {
		return linuxProperties(c, src.Linux)
	}
	p := map[string]string{
		"os_type":      "windows",
		"os_distro":    "windows",
		"architecture": "x86_64",
	}
	if c.Family != "" {
		p["family"] = c.Family
	}
	m := src.Manifest
	if m == nil {
		p["os_admin_user"] = "Administrator"
		return p
	}
	if v := windowsVersion(m); v != "" {
		p["os_version"] = v
	}
	if m.Windows.Arch != "" {
		p["architecture"] = archProperty(m.Windows.Arch)
	}
	if m.Windows.ImageName != "" {
		p["os_edition"] = m.Windows.ImageName
	}
	if m.Windows.Version != "" {
		p["os_build"] = m.Windows.Version
	}
	if m.Machine != "" {
		p["hw_machine_type"] = machineType(m.Machine)
	}
	switch m.Firmware {
	case "uefi":
		p["hw_firmware_type"] = "uefi"
		if strings.HasPrefix(p["hw_machine_type"], "q35") {
			// Secure Boot on libvirt needs UEFI on q35. Windows 11 and
			// Server 2025 expect it; older Windows boots either way, so
			// hosts without Secure Boot can still run it.
			p["os_secure_boot"] = "optional"
			if v := p["os_version"]; v == "11" || v == "2025" {
				p["os_secure_boot"] = "required"
			}
		}
	case "bios":
		p["hw_firmware_type"] = "bios"
	}
	if m.TPM {
		p["hw_tpm_version"] = "2.0"
		p["hw_tpm_model"] = "tpm-crb"
	}
	switch m.DiskInterface {
	case "virtio-blk":
		p["hw_disk_bus"] = "virtio"
	case "virtio-scsi":
		p["hw_disk_bus"] = "scsi"
		p["hw_scsi_model"] = "virtio-scsi"
	case "sata":
		p["hw_disk_bus"] = "sata"
	case "ide":
		p["hw_disk_bus"] = "ide"
	}
	switch m.NetDevice {
	case "virtio-net":
		p["hw_vif_model"] = "virtio"
	case "e1000", "e1000e", "rtl8139", "vmxnet3":
		p["hw_vif_model"] = m.NetDevice
	}
	if m.QemuGuestAgent != nil && *m.QemuGuestAgent {
		p["hw_qemu_guest_agent"] = "yes"
	}
	p["os_admin_user"] = "Administrator"
	if m.AdminUser != "" {
		p["os_admin_user"] = m.AdminUser
	}
	if m.ISOChecksum != "" {
		p["winbake_source_iso_checksum"] = m.ISOChecksum
	}
	if m.SHA256 != "" {
		p["winbake_build_disk_sha256"] = m.SHA256
	}
	if kbs := kbList(m.Updates); kbs != "" {
		p["winbake_updates"] = fitPropertyValue(kbs)
	}
	return p
}

var versionInName = regexp.MustCompile(`(?i)\bWindows(?: Server)? (\d{4}|10|11)\b`)

// windowsVersion gives os_version: "2022", "2025", "11" ... from the image
// name, else from the build number.
func windowsVersion(m *buildManifest) string {
	if g := versionInName.FindStringSubmatch(m.Windows.ImageName); g != nil {
		return g[1]
	}
	parts := strings.Split(m.Windows.Version, ".")
	if len(parts) < 3 {
		return ""
	}
	build, err := strconv.Atoi(parts[2])
	if err != nil {
		return ""
	}
	server := strings.HasPrefix(m.Windows.InstallationType, "Server")
	if server {
		switch {
		case build >= 26100:
			return "2025"
		case build >= 20348:
			return "2022"
		case build >= 17763:
			return "2019"
		case build >= 14393:
			return "2016"
		}
		return ""
	}
	if build >= 22000 {
		return "11"
	}
	if build >= 10240 {
		return "10"
	}
	return ""
}

func archProperty(a string) string {
	switch strings.ToLower(a) {
	case "amd64", "x64", "x86_64":
		return "x86_64"
	case "arm64", "aarch64":
		return "aarch64"
	case "x86", "i386", "i686":
		return "i686"
	}
	return a
}

// machineType maps QEMU machine names (q35, pc-q35-8.2, pc, pc-i440fx-...)
// to Nova's hw_machine_type.
func machineType(m string) string {
	switch {
	case m == "q35" || strings.HasPrefix(m, "pc-q35"):
		return "q35"
	case m == "pc" || strings.HasPrefix(m, "pc-i440fx"):
		return "pc"
	}
	return m
}

// kbList is the sorted, de-duplicated list of the KBs the image has: the
// packages winbake-updates installed (or found installed, or left to finish
// at the next boot), not the ones that did not apply or failed.
func kbList(entries []image.ManifestUpdate) string {
	seen := map[string]bool{}
	var kbs []string
	for _, e := range entries {
		switch e.Result {
		case "not_applicable", "failed", "deferred":
			continue
		}
		kb := strings.ToUpper(strings.TrimSpace(e.KB))
		if kb != "" && !seen[kb] {
			seen[kb] = true
			kbs = append(kbs, kb)
		}
	}
	sort.Strings(kbs)
	return strings.Join(kbs, ",")
}

// imageProperties merges the derived properties with the user's; the
// user's win.
func imageProperties(c *Config, src *source) map[string]string {
	p := deriveProperties(c, src)
	for k, v := range c.Properties {
		p[k] = v
	}
	return p
}

// maxPropertyValue is Glance's limit for a property value.
const maxPropertyValue = 255

// fitPropertyValue shortens a comma-separated list to Glance's limit,
// ending it with ",..." when something was left out.
func fitPropertyValue(list string) string {
	if len(list) <= maxPropertyValue {
		return list
	}
	cut := strings.LastIndex(list[:maxPropertyValue-4], ",")
	if cut < 0 {
		return list[:maxPropertyValue]
	}
	return list[:cut] + ",..."
}
