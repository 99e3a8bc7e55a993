package unattend

import (
	"errors"
	"strings"
	"testing"
)

func validSettings() Settings {
	return Settings{
		Firmware:     FirmwareUEFI,
		ImageName:    "Windows Server 2022 SERVERDATACENTER",
		VirtioFolder: "2k22",
		Password:     testPassword,
	}
}

func TestValidateAcceptsGoodSettings(t *testing.T) {
	good := []func(*Settings){
		func(s *Settings) {},
		func(s *Settings) { s.Firmware = FirmwareBIOS },
		func(s *Settings) { s.ProductKey = fakeProductKey },
		func(s *Settings) { s.UILanguage, s.InputLocale = "de-DE", "0407:00000407" },
		func(s *Settings) { s.InputLocale = "en-US;0407:00000407" },
		func(s *Settings) {
			s.InputLocale = "0411:{03B5835F-F03C-411B-9CE2-AA23E1171E36}{A76C93D9-5523-4E90-AAFA-4DB112F9AC76}"
		},
		func(s *Settings) { s.UserLocale, s.SystemLocale = "sr-Latn-RS", "es-419" },
		func(s *Settings) { s.TimeZone = "Pacific Standard Time" },
		func(s *Settings) { s.TimeZone = "W. Europe Standard Time" },
		func(s *Settings) { s.ComputerName = "WIN-2022-01" },
		func(s *Settings) { s.ComputerName = "A" },
		func(s *Settings) { s.RecoveryPartitionMB = MinRecoveryPartitionMB },
		func(s *Settings) { s.RecoveryPartitionMB = MaxRecoveryPartitionMB },
		func(s *Settings) { s.VirtioDrives = []string{"D"} },
		func(s *Settings) { s.VirtioFolder = ""; s.VirtioDrives = []string{"not checked"} },
		func(s *Settings) { s.Username = "packer" },
		func(s *Settings) { s.Username = "administrator" },
		func(s *Settings) { s.Password = `p<&>"' ]]> é 中文 😀` },
		func(s *Settings) { s.Architecture = ArchARM64 },
		func(s *Settings) { s.Architecture = ArchX86 },
		func(s *Settings) { s.ExtraCommands = []string{`cmd.exe /c echo "<&>"`} },
	}
	for i, mod := range good {
		s := validSettings()
		mod(&s)
		if err := s.Validate(); err != nil {
			t.Errorf("case %d: unexpected error: %v", i, err)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	cases := []struct {
		name   string
		mod    func(*Settings)
		field  string
		accept string // part of the message saying what is accepted
	}{
		{"missing image name", func(s *Settings) { s.ImageName = "" }, "image_name", "is required"},
		{"blank image name", func(s *Settings) { s.ImageName = "   " }, "image_name", "is required"},
		{"image name with newline", func(s *Settings) { s.ImageName = "Windows\nServer" }, "image_name", "control character U+000A"},
		{"product key lower case", func(s *Settings) { s.ProductKey = strings.ToLower(fakeProductKey) }, "product_key", "BCDFGHJKMNPQRTVWXY2346789"},
		{"product key short", func(s *Settings) { s.ProductKey = "BCDFG-HJKMN-PQRTV-WXY23" }, "product_key", "5 groups of 5"},
		{"product key vowel", func(s *Settings) { s.ProductKey = "ABCDF-HJKMN-PQRTV-WXY23-46789" }, "product_key", "product-key alphabet"},
		{"product key no hyphens", func(s *Settings) { s.ProductKey = "BCDFGHJKMNPQRTVWXY2346789" }, "product_key", "separated by hyphens"},
		{"ui language underscore", func(s *Settings) { s.UILanguage = "en_US" }, "ui_language", "en-US"},
		{"ui language lower region", func(s *Settings) { s.UILanguage = "en-us" }, "ui_language", "upper-case region"},
		{"system locale language only", func(s *Settings) { s.SystemLocale = "en" }, "system_locale", "language tag"},
		{"user locale lcid", func(s *Settings) { s.UserLocale = "0409" }, "user_locale", "language tag"},
		{"input locale bad keyboard", func(s *Settings) { s.InputLocale = "0409:0409" }, "input_locale", "0409:00000409"},
		{"input locale bad list item", func(s *Settings) { s.InputLocale = "en-US;german" }, "input_locale", "separated by"},
		{"time zone IANA", func(s *Settings) { s.TimeZone = "Europe/Berlin" }, "time_zone", "IANA names"},
		{"time zone wrong case", func(s *Settings) { s.TimeZone = "pacific standard time" }, "time_zone", `did you mean "Pacific Standard Time"`},
		{"time zone unknown", func(s *Settings) { s.TimeZone = "Mars Standard Time" }, "time_zone", "tzutil /l"},
		{"computer name too long", func(s *Settings) { s.ComputerName = "ABCDEFGHIJKLMNOP" }, "computer_name", "1 to 15"},
		{"computer name underscore", func(s *Settings) { s.ComputerName = "WIN_2022" }, "computer_name", "letters, digits and hyphens"},
		{"computer name digits", func(s *Settings) { s.ComputerName = "2022" }, "computer_name", "not only digits"},
		{"computer name hyphen", func(s *Settings) { s.ComputerName = "-WIN" }, "computer_name", "not starting or ending"},
		{"recovery with bios", func(s *Settings) { s.Firmware, s.RecoveryPartitionMB = FirmwareBIOS, 500 }, "recovery_partition_size", `firmware "uefi"`},
		{"recovery too small", func(s *Settings) { s.RecoveryPartitionMB = 100 }, "recovery_partition_size", "300 to 10240"},
		{"recovery too large", func(s *Settings) { s.RecoveryPartitionMB = 20000 }, "recovery_partition_size", "300 to 10240"},
		{"recovery negative", func(s *Settings) { s.RecoveryPartitionMB = -1 }, "recovery_partition_size", "0 (no recovery partition)"},
		{"drive letter with colon", func(s *Settings) { s.VirtioDrives = []string{"D:"} }, "virtio_driver_drives[0]", "without \":\""},
		{"drive letter lower", func(s *Settings) { s.VirtioDrives = []string{"D", "e"} }, "virtio_driver_drives[1]", "upper-case"},
		{"drive letter X", func(s *Settings) { s.VirtioDrives = []string{"X"} }, "virtio_driver_drives[0]", "Windows PE system drive"},
		{"drive letter twice", func(s *Settings) { s.VirtioDrives = []string{"D", "D"} }, "virtio_driver_drives[1]", "at most once"},
		{"virtio folder path", func(s *Settings) { s.VirtioFolder = `2k22\amd64` }, "virtio_folder", "2k22"},
		{"virtio arch", func(s *Settings) { s.VirtioArchFolder = "x64" }, "virtio_arch_folder", "ARM64"},
		{"architecture", func(s *Settings) { s.Architecture = "ia64" }, "architecture", `"amd64"`},
		{"firmware", func(s *Settings) { s.Firmware = "efi" }, "firmware", `"uefi"`},
		{"username forbidden char", func(s *Settings) { s.Username = `build\user` }, "winrm_username", `"/\[]:|<>+=;,?*%@`},
		{"username too long", func(s *Settings) { s.Username = "abcdefghijklmnopqrstu" }, "winrm_username", "1 to 20"},
		{"username dots", func(s *Settings) { s.Username = ". ." }, "winrm_username", "periods or spaces"},
		{"username guest", func(s *Settings) { s.Username = "guest" }, "winrm_username", "Guest"},
		{"password empty", func(s *Settings) { s.Password = "" }, "winrm_password", "must not be empty"},
		{"password control char", func(s *Settings) { s.Password = "abc\x01def" }, "winrm_password", "control character U+0001"},
		{"password tab", func(s *Settings) { s.Password = "abc\tdef" }, "winrm_password", "control characters"},
		{"password DEL", func(s *Settings) { s.Password = "abc\x7f" }, "winrm_password", "U+007F"},
		{"password non-character", func(s *Settings) { s.Password = "abc\uFFFE" }, "winrm_password", "U+FFFE"},
		{"password invalid UTF-8", func(s *Settings) { s.Password = "abc\xff" }, "winrm_password", "UTF-8"},
		{"password too long", func(s *Settings) { s.Password = strings.Repeat("a", 128) }, "winrm_password", "at most 127"},
		{"full name control", func(s *Settings) { s.FullName = "a\x00b" }, "full_name", "U+0000"},
		{"organization too long", func(s *Settings) { s.Organization = strings.Repeat("o", 257) }, "organization", "at most 256"},
		{"empty extra command", func(s *Settings) { s.ExtraCommands = []string{"echo ok", " "} }, "unattend_extra_commands[1]", "command line"},
		{"multi-line extra command", func(s *Settings) { s.ExtraCommands = []string{"echo a\r\necho b"} }, "unattend_extra_commands[0]", "line breaks"},
		{"extra command too long", func(s *Settings) { s.ExtraCommands = []string{strings.Repeat("x", 1025)} }, "unattend_extra_commands[0]", "at most 1024"},
		{"autologon count", func(s *Settings) { s.AutoLogonCount = -1 }, "autologon_count", "1 to 999"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := validSettings()
			c.mod(&s)
			errs := s.Problems()
			if len(errs) != 1 {
				t.Fatalf("got %d errors, want 1: %v", len(errs), errs)
			}
			var fe *FieldError
			if !errors.As(errs[0], &fe) {
				t.Fatalf("error %T is not a *FieldError", errs[0])
			}
			if fe.Field != c.field {
				t.Errorf("field %q, want %q (%v)", fe.Field, c.field, fe)
			}
			if !strings.HasPrefix(fe.Error(), c.field+": ") {
				t.Errorf("message %q does not start with the field name", fe.Error())
			}
			if !strings.Contains(fe.Msg, c.accept) {
				t.Errorf("message %q does not contain %q", fe.Msg, c.accept)
			}
			if _, err := Render(s); err == nil {
				t.Error("Render accepted invalid settings")
			}
		})
	}
}

func TestSecretsNotEchoed(t *testing.T) {
	s := validSettings()
	s.Password = "secret\x01value"
	s.ProductKey = "SECRETKEY"
	err := s.Validate()
	if err == nil {
		t.Fatal("expected errors")
	}
	if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "SECRETKEY") {
		t.Errorf("error echoes a secret: %v", err)
	}
}

func TestTimeZones(t *testing.T) {
	zones := TimeZones()
	if len(zones) < 130 {
		t.Fatalf("only %d time zones", len(zones))
	}
	for _, z := range []string{"UTC", "Pacific Standard Time", "W. Europe Standard Time", "GMT Standard Time",
		"Tokyo Standard Time", "AUS Eastern Standard Time", "India Standard Time", "Central Standard Time (Mexico)",
		"UTC-11", "UTC+12", "Dateline Standard Time"} {
		if !IsTimeZone(z) {
			t.Errorf("%q missing", z)
		}
	}
	for _, z := range zones {
		if strings.TrimSpace(z) != z || strings.Contains(z, "/") {
			t.Errorf("odd time zone ID %q", z)
		}
	}
}

func TestWithDefaults(t *testing.T) {
	s := Settings{UILanguage: "de-DE"}.WithDefaults()
	if s.InputLocale != "de-DE" || s.SystemLocale != "de-DE" || s.UserLocale != "de-DE" {
		t.Errorf("locales do not default to ui_language: %+v", s)
	}
	if s.Architecture != ArchAMD64 || s.VirtioArchFolder != "amd64" || s.TimeZone != "UTC" || s.ComputerName != "*" ||
		s.Username != "Administrator" || s.AutoLogonCount != 1 {
		t.Errorf("defaults: %+v", s)
	}
	if got := (Settings{Architecture: ArchARM64}).WithDefaults().VirtioArchFolder; got != "ARM64" {
		t.Errorf("arm64 virtio folder %q", got)
	}
	// The defaults must not alias the package-level slices.
	s.VirtioDrives[0] = "Z"
	if DefaultVirtioDrives[0] != "D" {
		t.Error("WithDefaults aliases DefaultVirtioDrives")
	}
}
