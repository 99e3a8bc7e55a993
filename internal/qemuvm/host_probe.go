package qemuvm

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// HostPaths are the host files winbake inspects to pick the accelerator and
// the OVMF firmware. Tests point them at fixtures.
type HostPaths struct {
	KVMDevice     string // /dev/kvm
	CPUInfo       string // /proc/cpuinfo
	KVMPVMModule  string // /sys/module/kvm_pvm
	FirmwareDescs string // /usr/share/qemu/firmware
	DebianOVMFDir string // /usr/share/OVMF
}

// DefaultHostPaths are the real locations.
var DefaultHostPaths = HostPaths{
	KVMDevice:     "/dev/kvm",
	CPUInfo:       "/proc/cpuinfo",
	KVMPVMModule:  "/sys/module/kvm_pvm",
	FirmwareDescs: "/usr/share/qemu/firmware",
	DebianOVMFDir: "/usr/share/OVMF",
}

var vmxSVM = regexp.MustCompile(`(?m)^flags\s*:.*\b(vmx|svm)\b`)

// ChooseAccelerator resolves `accelerator` to "kvm" or "tcg" and says why.
// "auto" picks KVM only when /dev/kvm opens, the CPU advertises vmx or svm,
// and kvm_pvm (software nested virtualisation) is not loaded.
func (p HostPaths) ChooseAccelerator(setting string) (accel, reason string) {
	if setting == AccelKVM || setting == AccelTCG {
		return setting, "set by accelerator"
	}
	f, err := os.OpenFile(p.KVMDevice, os.O_RDWR, 0)
	if err != nil {
		return AccelTCG, fmt.Sprintf("%s does not open (%v)", p.KVMDevice, err)
	}
	f.Close()
	cpuinfo, err := os.ReadFile(p.CPUInfo)
	if err != nil || !vmxSVM.Match(cpuinfo) {
		return AccelTCG, "the CPU has no vmx or svm flag"
	}
	if _, err := os.Stat(p.KVMPVMModule); err == nil {
		return AccelTCG, "the host runs kvm_pvm (software nested virtualisation), which cannot run Windows"
	}
	return AccelKVM, "/dev/kvm opens and the CPU has hardware virtualisation"
}

// firmwareDescriptor is the part of a QEMU firmware descriptor
// (docs/interop/firmware.json) winbake reads.
type firmwareDescriptor struct {
	InterfaceTypes []string `json:"interface-types"`
	Mapping        struct {
		Device     string `json:"device"`
		Executable struct {
			Filename string `json:"filename"`
			Format   string `json:"format"`
		} `json:"executable"`
		NVRAMTemplate struct {
			Filename string `json:"filename"`
			Format   string `json:"format"`
		} `json:"nvram-template"`
	} `json:"mapping"`
	Targets []struct {
		Architecture string   `json:"architecture"`
		Machines     []string `json:"machines"`
	} `json:"targets"`
	Features []string `json:"features"`
}

// OVMF is a UEFI flash firmware: code and variable store template, and
// their formats ("raw" or "qcow2").
type OVMF struct {
	Code, Vars             string
	CodeFormat, VarsFormat string
	// SecureBoot marks a Secure Boot build, which needs SMM.
	SecureBoot bool
}

// FindOVMF picks the UEFI firmware for a q35 x86_64 VM without Secure
// Boot: the first matching descriptor (by file name, as QEMU orders them)
// whose files exist, else Debian's OVMF_CODE_4M.fd/OVMF_VARS_4M.fd.
func (p HostPaths) FindOVMF() (OVMF, error) {
	descs, _ := filepath.Glob(filepath.Join(p.FirmwareDescs, "*.json"))
	sort.Strings(descs)
	for _, path := range descs {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		var d firmwareDescriptor
		if json.Unmarshal(b, &d) != nil || !slices.Contains(d.InterfaceTypes, "uefi") || d.Mapping.Device != "flash" {
			continue
		}
		if slices.Contains(d.Features, "requires-smm") || slices.Contains(d.Features, "secure-boot") {
			continue
		}
		if !q35x86(d) || !exists(d.Mapping.Executable.Filename) || !exists(d.Mapping.NVRAMTemplate.Filename) {
			continue
		}
		return OVMF{
			Code: d.Mapping.Executable.Filename, CodeFormat: orRaw(d.Mapping.Executable.Format),
			Vars: d.Mapping.NVRAMTemplate.Filename, VarsFormat: orRaw(d.Mapping.NVRAMTemplate.Format),
		}, nil
	}
	code, vars := filepath.Join(p.DebianOVMFDir, "OVMF_CODE_4M.fd"), filepath.Join(p.DebianOVMFDir, "OVMF_VARS_4M.fd")
	if exists(code) && exists(vars) {
		return OVMF{Code: code, Vars: vars, CodeFormat: "raw", VarsFormat: "raw"}, nil
	}
	return OVMF{}, errors.New(`efi_firmware_code: no OVMF firmware found in ` + p.FirmwareDescs + `/*.json or as ` + code +
		`; install OVMF (Debian: apt-get install ovmf), set efi_firmware_code and efi_firmware_vars, or use firmware = "bios"`)
}

// FindSecureBootOVMF picks the UEFI firmware for a q35 x86_64 VM with
// Secure Boot: the first descriptor with the features secure-boot,
// enrolled-keys (Microsoft's keys in the variable store template) and
// requires-smm whose files exist, else Debian's
// OVMF_CODE_4M.secboot.fd/OVMF_VARS_4M.ms.fd.
func (p HostPaths) FindSecureBootOVMF() (OVMF, error) {
	descs, _ := filepath.Glob(filepath.Join(p.FirmwareDescs, "*.json"))
	sort.Strings(descs)
	for _, path := range descs {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		var d firmwareDescriptor
		if json.Unmarshal(b, &d) != nil || !slices.Contains(d.InterfaceTypes, "uefi") || d.Mapping.Device != "flash" {
			continue
		}
		if !slices.Contains(d.Features, "secure-boot") || !slices.Contains(d.Features, "enrolled-keys") || !slices.Contains(d.Features, "requires-smm") {
			continue
		}
		if !q35x86(d) || !exists(d.Mapping.Executable.Filename) || !exists(d.Mapping.NVRAMTemplate.Filename) {
			continue
		}
		return OVMF{
			Code: d.Mapping.Executable.Filename, CodeFormat: orRaw(d.Mapping.Executable.Format),
			Vars: d.Mapping.NVRAMTemplate.Filename, VarsFormat: orRaw(d.Mapping.NVRAMTemplate.Format),
			SecureBoot: true,
		}, nil
	}
	code, vars := filepath.Join(p.DebianOVMFDir, "OVMF_CODE_4M.secboot.fd"), filepath.Join(p.DebianOVMFDir, "OVMF_VARS_4M.ms.fd")
	if exists(code) && exists(vars) {
		return OVMF{Code: code, Vars: vars, CodeFormat: "raw", VarsFormat: "raw", SecureBoot: true}, nil
	}
	return OVMF{}, errors.New(`secure_boot: no Secure Boot OVMF with Microsoft's keys enrolled found in ` + p.FirmwareDescs +
		`/*.json (features secure-boot, enrolled-keys, requires-smm) or as ` + code + ` and ` + vars +
		`; install OVMF (Debian: apt-get install ovmf), set efi_firmware_code and efi_firmware_vars, or set secure_boot = false`)
}

func q35x86(d firmwareDescriptor) bool {
	for _, t := range d.Targets {
		if t.Architecture != "x86_64" {
			continue
		}
		for _, m := range t.Machines {
			if strings.HasPrefix(m, "pc-q35") {
				return true
			}
		}
	}
	return false
}

func orRaw(format string) string {
	if format == "" {
		return "raw"
	}
	return format
}

func exists(path string) bool {
	if path == "" {
		return false
	}
	_, err := os.Stat(path)
	return err == nil
}
