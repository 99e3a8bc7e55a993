package unattend

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestPasswordEncodingMatchesMicrosoftExamples(t *testing.T) {
	// Values from Microsoft's Microsoft-Windows-Shell-Setup | UserAccounts
	// reference: AdministratorPassword "pw" and LocalAccount "password".
	if got := EncodeAdministratorPassword("pw"); got != "cAB3AEEAZABtAGkAbgBpAHMAdAByAGEAdABvAHIAUABhAHMAcwB3AG8AcgBkAA==" {
		t.Errorf("EncodeAdministratorPassword(pw) = %s", got)
	}
	if got := EncodeUserPassword("password"); got != "cABhAHMAcwB3AG8AcgBkAFAAYQBzAHMAdwBvAHIAZAA=" {
		t.Errorf("EncodeUserPassword(password) = %s", got)
	}
	// Characters outside the BMP become surrogate pairs.
	if got := decodePassword(t, EncodeUserPassword("a😀"), PasswordSuffix); got != "a😀" {
		t.Errorf("round trip %q", got)
	}
}

// TestSpecialCharactersRoundTrip renders values full of XML metacharacters,
// parses the output back and compares.
func TestSpecialCharactersRoundTrip(t *testing.T) {
	const nasty = `p<&>"'`
	s := Settings{
		Firmware:      FirmwareUEFI,
		ImageName:     `Windows <Server> & "2022" 'x' ]]>`,
		FullName:      nasty + " full",
		Organization:  nasty + " org",
		VirtioFolder:  "2k22",
		Username:      "o'brien&co",
		Password:      nasty,
		ExtraCommands: []string{`cmd.exe /c echo "a<b" & echo 'c' > C:\x.txt`, `]]><!-- -->`},
	}
	out, err := Render(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckAnswerFile(out); err != nil {
		t.Fatal(err)
	}
	root := parseTree(t, out)
	setup := root.component(PassWindowsPE, "Microsoft-Windows-Setup")
	if got := setup.path("ImageInstall", "OSImage", "InstallFrom", "MetaData", "Value").Text; got != s.ImageName {
		t.Errorf("image name %q", got)
	}
	if got := setup.path("UserData", "FullName").Text; got != s.FullName {
		t.Errorf("full name %q", got)
	}
	if got := setup.path("UserData", "Organization").Text; got != s.Organization {
		t.Errorf("organization %q", got)
	}
	shell := root.component(PassOOBESystem, "Microsoft-Windows-Shell-Setup")
	if got := decodePassword(t, shell.path("AutoLogon", "Password", "Value").Text, PasswordSuffix); got != nasty {
		t.Errorf("autologon password %q", got)
	}
	la := shell.path("UserAccounts", "LocalAccounts", "LocalAccount")
	if la.childText("Name") != s.Username || decodePassword(t, la.path("Password", "Value").Text, PasswordSuffix) != nasty {
		t.Errorf("local account %q", la.childText("Name"))
	}
	var cmds []string
	for _, c := range shell.child("FirstLogonCommands").Children {
		cmds = append(cmds, c.childText("CommandLine"))
	}
	if !slices.Equal(cmds[:2], s.ExtraCommands) {
		t.Errorf("commands %q", cmds[:2])
	}
}

func TestRenderOmitsOptionalParts(t *testing.T) {
	s := validSettings()
	s.VirtioFolder = ""
	out, err := Render(s)
	if err != nil {
		t.Fatal(err)
	}
	root := parseTree(t, out)
	if root.component(PassWindowsPE, "Microsoft-Windows-PnpCustomizationsWinPE") != nil {
		t.Error("driver paths rendered without a virtio folder")
	}
	setup := root.component(PassWindowsPE, "Microsoft-Windows-Setup")
	if setup.path("UserData", "ProductKey") != nil {
		t.Error("product key rendered without a key")
	}
	if setup.child("RunSynchronous") != nil {
		t.Error("LabConfig rendered without bypass_hardware_checks")
	}
	for _, c := range []string{"Microsoft-Windows-Deployment", "Networking-MPSSVC-Svc", "Microsoft-Windows-TerminalServices-LocalSessionManager"} {
		if root.component(PassSpecialize, c) != nil {
			t.Errorf("%s rendered with RDP and ICMP off", c)
		}
	}
	if strings.Contains(string(out), "SkipMachineOOBE") || strings.Contains(string(out), "SkipUserOOBE") {
		t.Error("deprecated SkipMachineOOBE/SkipUserOOBE rendered")
	}
}

func TestRenderReturnsAllProblems(t *testing.T) {
	_, err := Render(Settings{Firmware: "efi", TimeZone: "Nowhere"})
	if err == nil {
		t.Fatal("expected errors")
	}
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("%T is not a FieldError", e)
		}
		fields = append(fields, fe.Field)
	}
	want := []string{"firmware", "image_name", "time_zone", "winrm_password"}
	if !slices.Equal(fields, want) {
		t.Errorf("fields %v, want %v", fields, want)
	}
}

func TestLayout(t *testing.T) {
	cases := []struct {
		fw       Firmware
		recovery int
		parts    int
		windows  int
		minDisk  uint64
	}{
		{FirmwareBIOS, 0, 1, 1, 32770},
		{FirmwareBIOS, 1024, 1, 1, 32770}, // recovery ignored for BIOS
		{FirmwareUEFI, 0, 3, 3, 32768 + 100 + 16 + 2},
		{FirmwareUEFI, 1024, 4, 4, 32768 + 100 + 16 + 1024 + 2},
	}
	for _, c := range cases {
		l := LayoutFor(c.fw, c.recovery)
		if len(l.Partitions) != c.parts || l.WindowsPartition != c.windows {
			t.Errorf("%s/%d: %d partitions, Windows %d", c.fw, c.recovery, len(l.Partitions), l.WindowsPartition)
		}
		if got := MinimumDiskMB(c.fw, c.recovery); got != c.minDisk {
			t.Errorf("%s/%d: minimum disk %d, want %d", c.fw, c.recovery, got, c.minDisk)
		}
		for i, p := range l.Partitions {
			if p.Number != i+1 {
				t.Errorf("partition %d numbered %d", i+1, p.Number)
			}
		}
	}
}

func TestWinRMCommands(t *testing.T) {
	cmds := WinRMCommands()
	if len(cmds) < 7 {
		t.Fatalf("only %d WinRM commands", len(cmds))
	}
	var lines []string
	for i, c := range cmds {
		if c.Order != i+1 {
			t.Errorf("command %d has Order %d", i+1, c.Order)
		}
		if c.Description == "" || strings.HasPrefix(strings.ToUpper(c.CommandLine), "REM") {
			t.Errorf("command %d: %+v", i+1, c)
		}
		if err := ValidateText("winrm", c.CommandLine, maxCommandLineLength); err != nil {
			t.Error(err)
		}
		lines = append(lines, c.CommandLine)
	}
	all := strings.Join(lines, "\n")
	for _, want := range []string{
		"Set-NetConnectionProfile -NetworkCategory Private",
		"winrm quickconfig -quiet",
		`@{AllowUnencrypted="true"}`,
		`@{Basic="true"}`,
		"localport=5985",
		"start= delayed-auto",
		"LocalAccountTokenFilterPolicy /t REG_DWORD /d 1",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("WinRM commands lack %q", want)
		}
	}
	// Authentication is switched on after everything else is configured.
	basic := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, `@{Basic="true"}`) })
	for _, before := range []string{"Set-NetConnectionProfile", "LocalAccountTokenFilterPolicy", "quickconfig", "AllowUnencrypted", "delayed-auto", "localport=5985"} {
		if i := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, before) }); i > basic {
			t.Errorf("%q comes after Basic auth is enabled", before)
		}
	}
}

func TestParseCommandScript(t *testing.T) {
	got := parseCommandScript("REM header\r\n\r\nrem first\r\necho 1\r\n:: second\necho 2\necho 3\nREMARK.exe\n", "x")
	want := []Command{
		{1, "echo 1", "first"},
		{2, "echo 2", "second"},
		{3, "echo 3", "x (step 3)"},
		{4, "REMARK.exe", "x (step 4)"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestFirstLogonCommandsOrder(t *testing.T) {
	s := Settings{ExtraCommands: []string{"a", "b"}}
	cmds := s.FirstLogonCommands()
	if cmds[0].CommandLine != "a" || cmds[1].CommandLine != "b" {
		t.Errorf("extra commands not first: %+v", cmds[:2])
	}
	for i, c := range cmds {
		if c.Order != i+1 {
			t.Errorf("Order %d at %d", c.Order, i)
		}
	}
	if last := cmds[len(cmds)-1]; last.CommandLine != WinRMCommands()[len(WinRMCommands())-1].CommandLine {
		t.Errorf("last command %q is not WinRM", last.CommandLine)
	}
}
