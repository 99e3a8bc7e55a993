package common

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/packer-plugin-sdk/communicator"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
	"github.com/zclconf/go-cty/cty"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/unattend"
)

const unattendTestDisk = 64 * 1024 // MiB

func testUnattendConfig() UnattendConfig {
	return UnattendConfig{ImageName: "Windows Server 2022 SERVERDATACENTER"}
}

func writeUnattendTemplate(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "autounattend.xml.tmpl")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// prepareUnattend runs Prepare and PrepareCredentials like a builder does.
func prepareUnattend(c *UnattendConfig, comm *communicator.Config, firmware string, disk uint64) []error {
	errs := c.Prepare(&interpolate.Context{}, firmware, disk)
	errs = append(errs, c.PrepareCredentials(comm)...)
	return append(errs, c.PrepareWinRMTransport(comm, true)...)
}

func TestUnattendConfigDefaults(t *testing.T) {
	c := testUnattendConfig()
	comm := &communicator.Config{Type: "winrm"}
	if errs := prepareUnattend(&c, comm, qemuvm.FirmwareUEFI, unattendTestDisk); len(errs) != 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
	if c.UILanguage != "en-US" || c.InputLocale != "en-US" || c.SystemLocale != "en-US" || c.UserLocale != "en-US" {
		t.Errorf("locales: %q %q %q %q", c.UILanguage, c.InputLocale, c.SystemLocale, c.UserLocale)
	}
	if c.TimeZone != "UTC" || c.ComputerName != "*" {
		t.Errorf("time zone %q, computer name %q", c.TimeZone, c.ComputerName)
	}
	if !c.EnableRDP.True() || !c.RDPRequireNLA.True() || !c.AllowICMP.True() || c.BypassHardwareChecks {
		t.Errorf("booleans: rdp %v nla %v icmp %v bypass %v", c.EnableRDP, c.RDPRequireNLA, c.AllowICMP, c.BypassHardwareChecks)
	}
	if strings.Join(c.VirtioDriverDrives, ",") != "D,E,F,G,H" {
		t.Errorf("drives %v", c.VirtioDriverDrives)
	}
	if comm.WinRMUser != "Administrator" || comm.WinRMPassword == "" {
		t.Errorf("credentials %q / empty password %v", comm.WinRMUser, comm.WinRMPassword == "")
	}
}

func TestUnattendConfigKeepsExplicitValues(t *testing.T) {
	c := testUnattendConfig()
	c.UILanguage = "de-DE"
	c.UserLocale = "en-GB"
	c.EnableRDP = config.TriFalse
	c.AllowICMP = config.TriFalse
	c.ProductKey = " bcdfg-hjkmn-pqrtv-wxy23-46789 "
	c.VirtioDriverDrives = []string{"e:", "f"}
	comm := &communicator.Config{WinRM: communicator.WinRM{WinRMUser: "packer", WinRMPassword: "Given-Pa55word!"}}
	if errs := prepareUnattend(&c, comm, qemuvm.FirmwareBIOS, unattendTestDisk); len(errs) != 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
	if c.InputLocale != "de-DE" || c.SystemLocale != "de-DE" || c.UserLocale != "en-GB" {
		t.Errorf("locales %q %q %q", c.InputLocale, c.SystemLocale, c.UserLocale)
	}
	if c.EnableRDP.True() || c.AllowICMP.True() {
		t.Error("explicit false overwritten")
	}
	if c.ProductKey != "BCDFG-HJKMN-PQRTV-WXY23-46789" {
		t.Errorf("product key not normalised: %q", c.ProductKey)
	}
	if strings.Join(c.VirtioDriverDrives, ",") != "E,F" {
		t.Errorf("drives not normalised: %v", c.VirtioDriverDrives)
	}
	if comm.WinRMPassword != "Given-Pa55word!" || comm.WinRMUser != "packer" {
		t.Error("given credentials replaced")
	}
	s := c.Settings(qemuvm.FirmwareBIOS, "2k22", "", "amd64")
	if s.Username != "packer" || s.Password != "Given-Pa55word!" || s.EnableRDP || !s.RDPRequireNLA || s.VirtioFolder != "2k22" {
		t.Errorf("settings %+v", s)
	}
}

func TestUnattendConfigRejects(t *testing.T) {
	parseFail := "<unattend>\n\n{{ if }}\n</unattend>\n"
	cases := []struct {
		name     string
		mod      func(t *testing.T, c *UnattendConfig, comm *communicator.Config)
		firmware string
		disk     uint64
		field    string
		accept   string
	}{
		{name: "missing image_name", mod: func(_ *testing.T, c *UnattendConfig, _ *communicator.Config) { c.ImageName = "" },
			field: "image_name", accept: `"Windows Server 2022 SERVERDATACENTER"`},
		{name: "product key malformed", mod: func(_ *testing.T, c *UnattendConfig, _ *communicator.Config) { c.ProductKey = "ABCDE-12345" },
			field: "product_key", accept: "5 groups of 5 characters"},
		{name: "product key bad letters", mod: func(_ *testing.T, c *UnattendConfig, _ *communicator.Config) {
			c.ProductKey = "AAAAA-EEEEE-IIIII-OOOOO-UUUUU"
		}, field: "product_key", accept: "BCDFGHJKMNPQRTVWXY2346789"},
		{name: "unknown locale format", mod: func(_ *testing.T, c *UnattendConfig, _ *communicator.Config) { c.UILanguage = "english" },
			field: "ui_language", accept: `"en-US"`},
		{name: "input locale keyboard malformed", mod: func(_ *testing.T, c *UnattendConfig, _ *communicator.Config) { c.InputLocale = "0409-00000409" },
			field: "input_locale", accept: `"0409:00000409"`},
		{name: "user locale underscore", mod: func(_ *testing.T, c *UnattendConfig, _ *communicator.Config) { c.UserLocale = "en_GB" },
			field: "user_locale", accept: "language tag"},
		{name: "bad time zone", mod: func(_ *testing.T, c *UnattendConfig, _ *communicator.Config) { c.TimeZone = "CET" },
			field: "time_zone", accept: `"W. Europe Standard Time"`},
		{name: "IANA time zone", mod: func(_ *testing.T, c *UnattendConfig, _ *communicator.Config) { c.TimeZone = "Europe/Berlin" },
			field: "time_zone", accept: "IANA names"},
		{name: "computer name too long", mod: func(_ *testing.T, c *UnattendConfig, _ *communicator.Config) {
			c.ComputerName = "THIS-NAME-IS-TOO-LONG"
		},
			field: "computer_name", accept: "1 to 15 letters, digits and hyphens"},
		{name: "computer name bad chars", mod: func(_ *testing.T, c *UnattendConfig, _ *communicator.Config) { c.ComputerName = "web_01" },
			field: "computer_name", accept: "letters, digits and hyphens"},
		{name: "recovery partition with bios", mod: func(_ *testing.T, c *UnattendConfig, _ *communicator.Config) { c.RecoveryPartitionSize = 1024 },
			firmware: qemuvm.FirmwareBIOS, field: "recovery_partition_size", accept: `only supported with firmware "uefi"`},
		{name: "recovery partition too small", mod: func(_ *testing.T, c *UnattendConfig, _ *communicator.Config) { c.RecoveryPartitionSize = 100 },
			field: "recovery_partition_size", accept: "300 to 10240 MB"},
		{name: "disk too small for uefi", disk: 30 * 1024,
			field: "disk_size", accept: "at least 32886 MiB"},
		{name: "disk too small for bios", disk: 32769, firmware: qemuvm.FirmwareBIOS,
			field: "disk_size", accept: "at least 32770 MiB"},
		{name: "disk too small with recovery", disk: 33000, mod: func(_ *testing.T, c *UnattendConfig, _ *communicator.Config) { c.RecoveryPartitionSize = 1024 },
			field: "disk_size", accept: "at least 33910 MiB are needed (EFI 100 MiB, MSR 16 MiB, recovery 1024 MiB"},
		{name: "template missing", mod: func(t *testing.T, c *UnattendConfig, _ *communicator.Config) {
			c.UnattendTemplate = filepath.Join(t.TempDir(), "nope.tmpl")
		}, field: "unattend_template", accept: "give the path of a Go text/template file"},
		{name: "template fails to parse", mod: func(t *testing.T, c *UnattendConfig, _ *communicator.Config) {
			c.UnattendTemplate = writeUnattendTemplate(t, parseFail)
		}, field: "unattend_template", accept: "autounattend.xml.tmpl:3:"},
		{name: "bad drive letter", mod: func(_ *testing.T, c *UnattendConfig, _ *communicator.Config) {
			c.VirtioDriverDrives = []string{"D", "DE"}
		},
			field: "virtio_driver_drives[1]", accept: "single upper-case drive letters A to Z"},
		{name: "Windows PE drive letter", mod: func(_ *testing.T, c *UnattendConfig, _ *communicator.Config) { c.VirtioDriverDrives = []string{"x"} },
			field: "virtio_driver_drives[0]", accept: "except X"},
		{name: "empty extra command", mod: func(_ *testing.T, c *UnattendConfig, _ *communicator.Config) {
			c.UnattendExtraCommands = []string{"cmd.exe /c echo ok", ""}
		}, field: "unattend_extra_commands[1]", accept: "command line"},
		{name: "multi-line extra command", mod: func(_ *testing.T, c *UnattendConfig, _ *communicator.Config) {
			c.UnattendExtraCommands = []string{"echo a\necho b"}
		}, field: "unattend_extra_commands[0]", accept: "only printable text"},
		{name: "unencodable password (non-ASCII)", mod: func(_ *testing.T, _ *UnattendConfig, comm *communicator.Config) { comm.WinRMPassword = "pässword-1A" },
			field: "winrm_password", accept: "printable ASCII"},
		{name: "unencodable password (control character)", mod: func(_ *testing.T, _ *UnattendConfig, comm *communicator.Config) {
			comm.WinRMPassword = "pass\nword-1A"
		}, field: "winrm_password", accept: "printable ASCII"},
		{name: "password too long", mod: func(_ *testing.T, _ *UnattendConfig, comm *communicator.Config) {
			comm.WinRMPassword = strings.Repeat("a", 128)
		},
			field: "winrm_password", accept: "at most 127"},
		{name: "bad user name", mod: func(_ *testing.T, _ *UnattendConfig, comm *communicator.Config) { comm.WinRMUser = `CORP\builder` },
			field: "winrm_username", accept: "1 to 20 printable characters"},
		{name: "winrm port", mod: func(_ *testing.T, _ *UnattendConfig, comm *communicator.Config) { comm.WinRMPort = 5986 },
			field: "winrm_port", accept: "leave winrm_port unset (or 5985)"},
		{name: "winrm port over https", mod: func(_ *testing.T, _ *UnattendConfig, comm *communicator.Config) {
			comm.WinRMUseSSL, comm.WinRMPort = true, 5985
		},
			field: "winrm_port", accept: "leave winrm_port unset (or 5986)"},
	}
	if len(cases) < 15 {
		t.Fatal("keep at least 15 bad configurations")
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testUnattendConfig()
			comm := &communicator.Config{Type: "winrm"}
			if tc.mod != nil {
				tc.mod(t, &c, comm)
			}
			fw := tc.firmware
			if fw == "" {
				fw = qemuvm.FirmwareUEFI
			}
			disk := tc.disk
			if disk == 0 {
				disk = unattendTestDisk
			}
			errs := prepareUnattend(&c, comm, fw, disk)
			if len(errs) != 1 {
				t.Fatalf("got %d errors, want exactly 1: %v", len(errs), errs)
			}
			msg := errs[0].Error()
			if !strings.HasPrefix(msg, tc.field+": ") {
				t.Errorf("error %q does not start with the field %q", msg, tc.field)
			}
			if !strings.Contains(msg, tc.accept) {
				t.Errorf("error %q does not say %q", msg, tc.accept)
			}
			var fe *unattend.FieldError
			if !errors.As(errs[0], &fe) || fe.Field != tc.field {
				t.Errorf("error is not a FieldError for %q: %#v", tc.field, errs[0])
			}
			if comm.WinRMPassword != "" && len(comm.WinRMPassword) > 3 && strings.Contains(msg, comm.WinRMPassword) {
				t.Errorf("error leaks the password: %q", msg)
			}
		})
	}
}

func TestUnattendConfigRender(t *testing.T) {
	c := testUnattendConfig()
	c.UnattendExtraCommands = []string{`cmd.exe /c echo "ready" > C:\ready.txt`}
	comm := &communicator.Config{Type: "winrm", WinRM: communicator.WinRM{WinRMPassword: `p<&>"'-1A`}}
	if errs := prepareUnattend(&c, comm, qemuvm.FirmwareUEFI, unattendTestDisk); len(errs) != 0 {
		t.Fatal(errs)
	}
	out, err := c.Render(qemuvm.FirmwareUEFI, "2k22", "amd64", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if err := unattend.CheckAnswerFile(out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"<Value>Windows Server 2022 SERVERDATACENTER</Value>",
		`D:\viostor\2k22\amd64`,
		unattend.EncodeAdministratorPassword(comm.WinRMPassword),
		"<CommandLine>cmd.exe /c echo &#34;ready&#34; &gt; C:\\ready.txt</CommandLine>",
		"<Type>EFI</Type>",
		"@FirewallAPI.dll,-28752",
		"icmpv4:8,any",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(string(out), comm.WinRMPassword) {
		t.Error("plain-text password in the answer file")
	}
}

func TestUnattendConfigRenderTemplate(t *testing.T) {
	good := `<?xml version="1.0" encoding="utf-8"?>
<unattend xmlns="{{ namespace }}" xmlns:wcm="{{ wcmNamespace }}">
{{ pass "windowsPE" }}
  <settings pass="oobeSystem">
    <component {{ component "Microsoft-Windows-Shell-Setup" }}>
      <RegisteredOwner>{{ xml .ImageName }}</RegisteredOwner>
    </component>
  </settings>
</unattend>
`
	c := testUnattendConfig()
	c.UnattendTemplate = writeUnattendTemplate(t, good)
	comm := &communicator.Config{}
	if errs := prepareUnattend(&c, comm, qemuvm.FirmwareBIOS, unattendTestDisk); len(errs) != 0 {
		t.Fatal(errs)
	}
	out, err := c.Render(qemuvm.FirmwareBIOS, "", "", "arm64")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "<RegisteredOwner>Windows Server 2022 SERVERDATACENTER</RegisteredOwner>") ||
		!strings.Contains(string(out), `processorArchitecture="arm64"`) {
		t.Errorf("template output:\n%s", out)
	}
}

func TestUnattendConfigTemplateFailsAtRender(t *testing.T) {
	bad := "<unattend xmlns=\"urn:schemas-microsoft-com:unattend\">\n\n{{ .NoSuchSetting }}\n</unattend>\n"
	c := testUnattendConfig()
	c.UnattendTemplate = writeUnattendTemplate(t, bad)
	comm := &communicator.Config{}
	if errs := prepareUnattend(&c, comm, qemuvm.FirmwareUEFI, unattendTestDisk); len(errs) != 0 {
		t.Fatalf("a template that parses must pass Prepare: %v", errs)
	}
	_, err := c.Render(qemuvm.FirmwareUEFI, "2k22", "amd64", "amd64")
	if err == nil {
		t.Fatal("Render succeeded")
	}
	for _, want := range []string{"unattend_template: ", c.UnattendTemplate, "autounattend.xml.tmpl:3:", "NoSuchSetting"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}

	// Output that is not an answer file is rejected at Render too.
	c2 := testUnattendConfig()
	c2.UnattendTemplate = writeUnattendTemplate(t, "<unattend xmlns=\"urn:schemas-microsoft-com:unattend\">\n<x>{{ .ImageName }}</y>\n</unattend>")
	if errs := prepareUnattend(&c2, &communicator.Config{}, qemuvm.FirmwareUEFI, 0); len(errs) != 0 {
		t.Fatal(errs)
	}
	if _, err := c2.Render(qemuvm.FirmwareUEFI, "", "", "amd64"); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("malformed template output: %v", err)
	}
}

func TestUnattendGeneratedPasswordIsSecret(t *testing.T) {
	c := testUnattendConfig()
	comm := &communicator.Config{Type: "winrm"}
	if errs := prepareUnattend(&c, comm, qemuvm.FirmwareUEFI, unattendTestDisk); len(errs) != 0 {
		t.Fatal(errs)
	}
	pw := comm.WinRMPassword
	line := packersdk.LogSecretFilter.FilterString("connecting to WinRM as Administrator with password " + pw)
	if strings.Contains(line, pw) || !strings.Contains(line, "<sensitive>") {
		t.Errorf("generated password not redacted: %q", line)
	}

	// A password the user gives is registered as well.
	c2 := testUnattendConfig()
	comm2 := &communicator.Config{WinRM: communicator.WinRM{WinRMPassword: "User-Given-Pa55word"}}
	if errs := prepareUnattend(&c2, comm2, qemuvm.FirmwareUEFI, unattendTestDisk); len(errs) != 0 {
		t.Fatal(errs)
	}
	if got := packersdk.LogSecretFilter.FilterString("pw=User-Given-Pa55word"); got != "pw=<sensitive>" {
		t.Errorf("user password not redacted: %q", got)
	}
}

func TestUnattendGeneratedPasswords(t *testing.T) {
	seen := map[string]bool{}
	allowed := passwordUpper + passwordLower + passwordDigits + passwordSymbols
	for i := 0; i < 200; i++ {
		var comm communicator.Config
		c := testUnattendConfig()
		if errs := c.PrepareCredentials(&comm); len(errs) != 0 {
			t.Fatal(errs)
		}
		pw := comm.WinRMPassword
		if seen[pw] {
			t.Fatalf("password repeated after %d builds", i)
		}
		seen[pw] = true
		if len(pw) < 20 {
			t.Fatalf("password of %d characters", len(pw))
		}
		classes := 0
		for _, set := range []string{passwordUpper, passwordLower, passwordDigits, passwordSymbols} {
			if strings.ContainsAny(pw, set) {
				classes++
			}
		}
		if classes != 4 {
			t.Fatalf("password uses %d of 4 character classes", classes)
		}
		if strings.Trim(pw, allowed) != "" {
			t.Fatalf("password has characters outside the alphabet")
		}
		if strings.Contains(strings.ToLower(pw), "administrator") {
			t.Fatal("password contains the user name")
		}
		if err := validateWinRMPassword(pw); err != nil {
			t.Fatalf("generated password rejected: %v", err)
		}
		if err := unattend.ValidatePassword(pw); err != nil {
			t.Fatalf("generated password rejected by the model: %v", err)
		}
	}
}

func TestUnattendConfigHCL2Spec(t *testing.T) {
	spec := (&FlatUnattendConfig{}).HCL2Spec()
	want := map[string]cty.Type{
		"image_name": cty.String, "product_key": cty.String, "ui_language": cty.String, "input_locale": cty.String,
		"system_locale": cty.String, "user_locale": cty.String, "time_zone": cty.String, "computer_name": cty.String,
		"enable_rdp": cty.Bool, "rdp_require_nla": cty.Bool, "allow_icmp": cty.Bool, "bypass_hardware_checks": cty.Bool,
		"recovery_partition_size": cty.Number, "virtio_driver_drives": cty.List(cty.String),
		"unattend_template": cty.String, "unattend_extra_commands": cty.List(cty.String),
	}
	if len(spec) != len(want) {
		t.Errorf("%d HCL fields, want %d", len(spec), len(want))
	}
	for name, typ := range want {
		a, ok := spec[name].(*hcldec.AttrSpec)
		if !ok {
			t.Errorf("%s missing", name)
			continue
		}
		if !a.Type.Equals(typ) {
			t.Errorf("%s has type %s, want %s", name, a.Type.FriendlyName(), typ.FriendlyName())
		}
	}
}

// WinRM speaks HTTP only through the loopback forward and only without
// winrm_use_ssl; a guest on a network always gets HTTPS on 5986.
func TestPrepareWinRMTransport(t *testing.T) {
	for _, tc := range []struct {
		loopback, useSSL bool
		port             int
		https            bool
		errField         string
	}{
		{loopback: true, https: false},
		{loopback: true, useSSL: true, https: true},
		{loopback: false, https: true},
		{loopback: false, port: 5986, https: true},
		{loopback: false, port: 5985, https: true, errField: "winrm_port"},
	} {
		c := testUnattendConfig()
		comm := &communicator.Config{Type: "winrm", WinRM: communicator.WinRM{WinRMUseSSL: tc.useSSL, WinRMPort: tc.port}}
		if errs := c.Prepare(&interpolate.Context{}, qemuvm.FirmwareUEFI, unattendTestDisk); len(errs) != 0 {
			t.Fatal(errs)
		}
		errs := c.PrepareWinRMTransport(comm, tc.loopback)
		if c.WinRMOverHTTPS() != tc.https || comm.WinRMUseSSL != tc.https {
			t.Errorf("%+v: https %t, winrm_use_ssl %t", tc, c.WinRMOverHTTPS(), comm.WinRMUseSSL)
		}
		switch {
		case tc.errField == "" && len(errs) != 0:
			t.Errorf("%+v: %v", tc, errs)
		case tc.errField != "" && (len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), tc.errField+": ")):
			t.Errorf("%+v: want one %s error, got %v", tc, tc.errField, errs)
		}
	}
}
