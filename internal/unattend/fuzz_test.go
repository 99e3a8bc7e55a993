package unattend

import (
	"errors"
	"testing"
)

// FuzzRenderWellFormed: whatever the field values, Render either rejects them
// with *FieldError values or returns a well-formed answer file from which
// every value parses back unchanged.
//
//	go test ./internal/unattend -run '^$' -fuzz FuzzRenderWellFormed -fuzztime 60s
func FuzzRenderWellFormed(f *testing.F) {
	f.Add("Windows Server 2022 SERVERDATACENTER", "winbake", "", "Administrator", testPassword, "*", "cmd.exe /c echo ok", "UTC", "en-US")
	f.Add(`Windows <Server> & "2022"`, `p<&>"'`, `]]>`, "o'brien&co", `p<&>"'`, "WIN-01", `echo "<&>" & echo '>'`, "W. Europe Standard Time", "de-DE")
	f.Add("Image\x00", "a\x01b", "\x7f", "user\n", "pass\r\nword", "name\t", "cmd\x1b[31m", "UTC\x00", "en-US\x00")
	f.Add("é 中文 😀", "\uFFFE", "\uFFFD", "ユーザー", "パスワード😀", "ABCDEFGHIJKLMNOP", "\xff\xfe", "Pacific Standard Time", "sr-Latn-RS")
	f.Add("", "", "", "", "", "", "", "", "")
	f.Add("<!-- -->", "<?pi?>", "&amp;", "&#0;", "&#x1;", "x", "<![CDATA[x]]>", "UTC", "en-US")
	f.Fuzz(func(t *testing.T, imageName, fullName, org, user, password, computer, command, tz, lang string) {
		s := Settings{
			Firmware:      FirmwareUEFI,
			ImageName:     imageName,
			FullName:      fullName,
			Organization:  org,
			Username:      user,
			Password:      password,
			ComputerName:  computer,
			TimeZone:      tz,
			UILanguage:    lang,
			VirtioFolder:  "2k22",
			EnableRDP:     true,
			AllowICMP:     true,
			ExtraCommands: []string{command},
		}
		out, err := Render(s)
		if err != nil {
			for _, e := range s.Problems() {
				var fe *FieldError
				if !errors.As(e, &fe) || fe.Field == "" || fe.Msg == "" {
					t.Fatalf("problem %v is not a FieldError", e)
				}
			}
			if len(s.Problems()) == 0 {
				t.Fatalf("Render failed without a validation problem: %v", err)
			}
			return
		}
		if err := CheckAnswerFile(out); err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, out)
		}
		d := s.WithDefaults()
		root := parseTree(t, out)
		setup := root.component(PassWindowsPE, "Microsoft-Windows-Setup")
		if got := setup.path("ImageInstall", "OSImage", "InstallFrom", "MetaData", "Value").Text; got != d.ImageName {
			t.Fatalf("image name %q, want %q", got, d.ImageName)
		}
		if got := setup.path("UserData", "FullName").Text; got != d.FullName {
			t.Fatalf("full name %q, want %q", got, d.FullName)
		}
		if o := setup.path("UserData", "Organization"); d.Organization != "" && (o == nil || o.Text != d.Organization) {
			t.Fatalf("organization lost")
		}
		shell := root.component(PassOOBESystem, "Microsoft-Windows-Shell-Setup")
		if got := shell.path("AutoLogon", "Username").Text; got != d.Username {
			t.Fatalf("username %q, want %q", got, d.Username)
		}
		if got := decodePassword(t, shell.path("AutoLogon", "Password", "Value").Text, PasswordSuffix); got != d.Password {
			t.Fatalf("password %q, want %q", got, d.Password)
		}
		if got := shell.path("FirstLogonCommands", "SynchronousCommand", "CommandLine").Text; got != command {
			t.Fatalf("command %q, want %q", got, command)
		}
		spec := root.component(PassSpecialize, "Microsoft-Windows-Shell-Setup")
		if spec.childText("ComputerName") != d.ComputerName || spec.childText("TimeZone") != d.TimeZone {
			t.Fatalf("specialize values lost")
		}
	})
}
