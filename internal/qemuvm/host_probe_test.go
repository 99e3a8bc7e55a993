package qemuvm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testio"
)

func probeFixture(t *testing.T, kvm bool, flags string, pvm bool) HostPaths {
	t.Helper()
	dir := t.TempDir()
	p := HostPaths{
		KVMDevice:     filepath.Join(dir, "kvm"),
		CPUInfo:       filepath.Join(dir, "cpuinfo"),
		KVMPVMModule:  filepath.Join(dir, "kvm_pvm"),
		FirmwareDescs: filepath.Join(dir, "firmware"),
		DebianOVMFDir: filepath.Join(dir, "OVMF"),
	}
	if kvm {
		testio.WriteFile(t, p.KVMDevice, "")
	}
	testio.WriteFile(t, p.CPUInfo, "processor\t: 0\nflags\t\t: fpu "+flags+" sse2\n")
	if pvm {
		if err := os.Mkdir(p.KVMPVMModule, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func TestChooseAccelerator(t *testing.T) {
	cases := []struct {
		name        string
		kvm         bool
		flags       string
		pvm         bool
		setting     string
		want        string
		reasonHints string
	}{
		{"KVM usable", true, "vmx", false, AccelAuto, AccelKVM, "hardware"},
		{"AMD", true, "svm", false, AccelAuto, AccelKVM, "hardware"},
		{"no /dev/kvm", false, "vmx", false, AccelAuto, AccelTCG, "does not open"},
		{"no vmx/svm", true, "", false, AccelAuto, AccelTCG, "vmx or svm"},
		{"kvm_pvm", true, "vmx", true, AccelAuto, AccelTCG, "kvm_pvm"},
		{"forced tcg", true, "vmx", false, AccelTCG, AccelTCG, "set by"},
		{"forced kvm", false, "", false, AccelKVM, AccelKVM, "set by"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := probeFixture(t, tc.kvm, tc.flags, tc.pvm).ChooseAccelerator(tc.setting)
			if got != tc.want || !strings.Contains(reason, tc.reasonHints) {
				t.Fatalf("got %s (%s), want %s (%s)", got, reason, tc.want, tc.reasonHints)
			}
		})
	}
}

func TestFindOVMFFromDescriptors(t *testing.T) {
	p := probeFixture(t, false, "", false)
	dir := filepath.Dir(p.CPUInfo)
	code, vars := filepath.Join(dir, "code.fd"), filepath.Join(dir, "vars.qcow2")
	sbCode := filepath.Join(dir, "sb.fd")
	testio.WriteFile(t, code, "x")
	testio.WriteFile(t, vars, "x")
	testio.WriteFile(t, sbCode, "x")
	testio.WriteFile(t, filepath.Join(p.FirmwareDescs, "40-secure.json"), `{"interface-types":["uefi"],"mapping":{"device":"flash",
"executable":{"filename":"`+sbCode+`","format":"raw"},"nvram-template":{"filename":"`+vars+`","format":"raw"}},
"targets":[{"architecture":"x86_64","machines":["pc-q35-*"]}],"features":["requires-smm","secure-boot"]}`)
	testio.WriteFile(t, filepath.Join(p.FirmwareDescs, "60-plain.json"), `{"interface-types":["uefi"],"mapping":{"device":"flash",
"executable":{"filename":"`+code+`","format":"raw"},"nvram-template":{"filename":"`+vars+`","format":"qcow2"}},
"targets":[{"architecture":"x86_64","machines":["pc-i440fx-*","pc-q35-*"]}],"features":["acpi-s3","amd-sev"]}`)
	got, err := p.FindOVMF()
	if err != nil {
		t.Fatal(err)
	}
	if got != (OVMF{Code: code, Vars: vars, CodeFormat: "raw", VarsFormat: "qcow2"}) {
		t.Fatalf("got %+v", got)
	}
}

func TestFindOVMFDebianFallbackAndError(t *testing.T) {
	p := probeFixture(t, false, "", false)
	if _, err := p.FindOVMF(); err == nil || !strings.HasPrefix(err.Error(), "efi_firmware_code:") {
		t.Fatalf("want an efi_firmware_code error, got %v", err)
	}
	testio.WriteFile(t, filepath.Join(p.DebianOVMFDir, "OVMF_CODE_4M.fd"), "x")
	testio.WriteFile(t, filepath.Join(p.DebianOVMFDir, "OVMF_VARS_4M.fd"), "x")
	got, err := p.FindOVMF()
	if err != nil || filepath.Base(got.Code) != "OVMF_CODE_4M.fd" || filepath.Base(got.Vars) != "OVMF_VARS_4M.fd" {
		t.Fatalf("got %+v, %v", got, err)
	}
}
