package glance

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxNameLength is Glance's limit for an image name: the image schema's
// `name` has maxLength 255 (glance/api/v2/images.py,
// get_base_properties).
const maxNameLength = 255

// maxPropertyName is Glance's limit for a property name (the
// image_properties table's name column is a VARCHAR(255)).
const maxPropertyName = 255

// Nova reads these image properties into enumerated fields of
// ImageMetaProps (nova/objects/image_meta.py) and refuses any other value
// when an instance is built from the image ("Invalid image metadata"). The
// values are the enumerations of nova/objects/fields.py (FirmwareType,
// DiskBus, SCSIModel, VIFModel from nova/network/model.py VIF_MODEL_ALL,
// VideoModel, RNGModel, WatchdogAction, OSType, SecureBoot,
// ConfigDrivePolicy, Architecture) and Glance's "Useful image properties"
// (doc/source/admin/useful-image-properties.rst), and for the vTPM
// properties Nova's emulated-TPM documentation (versions 1.2 and 2.0,
// models tpm-tis and tpm-crb; CRB only with 2.0). Values newer Nova
// releases added (video model bochs, NIC igb) are accepted too: refusing
// a value some cloud takes would be worse than letting one through.
var (
	diskBuses     = []string{"fdc", "ide", "sata", "scsi", "usb", "virtio", "xen", "lxc", "uml"}
	architectures = []string{"alpha", "armv6", "armv7l", "armv7b", "aarch64", "cris", "i686", "ia64", "lm32", "m68k",
		"microblaze", "microblazeel", "mips", "mipsel", "mips64", "mips64el", "openrisc", "parisc", "parisc64",
		"ppc", "ppcle", "ppc64", "ppc64le", "ppcemb", "s390", "s390x", "sh4", "sh4eb", "sparc", "sparc64",
		"unicore32", "x86_64", "xtensa", "xtensaeb",
		// Nova canonicalizes these to i686 and x86_64.
		"i386", "i486", "i586", "x86_32", "amd64"}
	novaEnumProperties = map[string]struct {
		values []string
		// fold: Nova lower-cases the value first (OSType, SCSIModel,
		// VIFModel, Architecture coerce()).
		fold bool
	}{
		"hw_firmware_type":   {[]string{"bios", "uefi"}, false},
		"hw_disk_bus":        {diskBuses, false},
		"hw_cdrom_bus":       {diskBuses, false},
		"hw_floppy_bus":      {diskBuses, false},
		"hw_rescue_bus":      {diskBuses, false},
		"hw_scsi_model":      {[]string{"buslogic", "ibmvscsi", "lsilogic", "lsisas1068", "lsisas1078", "virtio-scsi", "vmpvscsi", "lsilogicsas", "paravirtual"}, true},
		"hw_vif_model":       {[]string{"virtio", "ne2k_pci", "pcnet", "rtl8139", "e1000", "e1000e", "netfront", "spapr-vlan", "lan9118", "sriov", "vmxnet", "vmxnet3", "igb", "virtuale1000", "virtuale1000e", "virtualpcnet32", "virtualsriovethernetcard", "virtualvmxnet", "virtualvmxnet3"}, true},
		"hw_video_model":     {[]string{"vga", "cirrus", "vmvga", "xen", "qxl", "virtio", "gop", "none", "bochs"}, false},
		"hw_rng_model":       {[]string{"virtio"}, false},
		"hw_watchdog_action": {[]string{"disabled", "reset", "poweroff", "pause", "none"}, false},
		"hw_tpm_version":     {[]string{"1.2", "2.0"}, false},
		"hw_tpm_model":       {[]string{"tpm-tis", "tpm-crb"}, false},
		"os_type":            {[]string{"linux", "windows"}, true},
		"os_secure_boot":     {[]string{"required", "disabled", "optional"}, false},
		"img_config_drive":   {[]string{"optional", "mandatory"}, false},
		"architecture":       {architectures, true},
		"hw_architecture":    {architectures, true},
	}
	// novaIntegerProperties are IntegerFields of ImageMetaProps: Nova
	// refuses a value that is not a whole number.
	novaIntegerProperties = []string{"hw_cpu_sockets", "hw_cpu_cores", "hw_cpu_threads", "hw_cpu_max_sockets",
		"hw_cpu_max_cores", "hw_cpu_max_threads", "hw_video_ram", "hw_serial_port_count", "hw_numa_nodes", "os_shutdown_timeout"}
)

// checkProperties refuses property values Glance cannot store or Nova
// would refuse when an instance boots from the image, one error each,
// naming the property and what is accepted.
func checkProperties(props map[string]string) []error {
	var errs []error
	names := make([]string, 0, len(props))
	for k := range props {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := props[k]
		if len(k) > maxPropertyName {
			errs = append(errs, fmt.Errorf("properties: the name %.40q... has %d characters; Glance takes names of up to %d", k, len(k), maxPropertyName))
		}
		if len(v) > maxPropertyValue {
			errs = append(errs, fmt.Errorf("properties: %s has a value of %d characters; Glance takes values of up to %d", k, len(v), maxPropertyValue))
		}
		if enum, ok := novaEnumProperties[k]; ok {
			got := v
			if enum.fold {
				got = strings.ToLower(v)
			}
			if !contains(enum.values, got) {
				errs = append(errs, fmt.Errorf("properties: %s = %q is not a value Nova accepts; use one of %s", k, v, strings.Join(enum.values, ", ")))
			}
		}
		if contains(novaIntegerProperties, k) {
			if _, err := strconv.Atoi(v); err != nil {
				errs = append(errs, fmt.Errorf("properties: %s = %q is not a whole number, which Nova needs", k, v))
			}
		}
	}
	if props["hw_tpm_model"] == "tpm-crb" && props["hw_tpm_version"] == "1.2" {
		errs = append(errs, fmt.Errorf(`properties: hw_tpm_model = "tpm-crb" needs hw_tpm_version = "2.0" (Nova offers CRB only with TPM 2.0); use hw_tpm_model = "tpm-tis" or hw_tpm_version = "2.0"`))
	}
	return errs
}

// checkName refuses an image name Glance would refuse.
func checkName(name string) error {
	if n := utf8.RuneCountInString(name); n > maxNameLength {
		return fmt.Errorf("image_name: %d characters; Glance takes names of up to %d (the name starts %.60q)", n, maxNameLength, name)
	}
	return nil
}

// checkTLSFiles checks cacert, cert and key: files with PEM certificates,
// and a key that belongs to the certificate.
func (c *AuthConfig) checkTLSFiles() []error {
	var errs []error
	if c.CACertFile != "" {
		if b, err := os.ReadFile(c.CACertFile); err != nil {
			errs = append(errs, fmt.Errorf("cacert: %v; give a PEM file with the CA certificates of the Keystone and Glance endpoints", err))
		} else if !x509.NewCertPool().AppendCertsFromPEM(b) {
			errs = append(errs, fmt.Errorf("cacert: %s holds no PEM certificate; give a PEM file with the CA certificates of the Keystone and Glance endpoints", c.CACertFile))
		}
	}
	if c.ClientCertFile != "" && c.ClientKeyFile != "" {
		if _, err := tls.LoadX509KeyPair(c.ClientCertFile, c.ClientKeyFile); err != nil {
			errs = append(errs, fmt.Errorf("cert, key: %v; give a PEM client certificate and its private key", err))
		}
	}
	return errs
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// checkMergedProperties checks the properties the image gets (the derived
// ones with the user's on top) before anything is created, and says
// where the user's properties replace what the build recorded.
func checkMergedProperties(ui interface{ Say(string) }, c *Config, src *source) error {
	derived := deriveProperties(c, src)
	names := make([]string, 0, len(c.Properties))
	for k := range c.Properties {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if d, ok := derived[k]; ok && d != c.Properties[k] {
			ui.Say(fmt.Sprintf("properties: %s = %q replaces %q, which winbake derived from the build", k, c.Properties[k], d))
		}
	}
	if errs := checkProperties(imageProperties(c, src)); len(errs) > 0 {
		return errors.Join(errs...)
	}
	return nil
}
