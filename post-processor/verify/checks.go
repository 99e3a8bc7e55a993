package verify

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/guestcmd"
	"github.com/winbake/packer-plugin-winbake/internal/guestcontract"
	"github.com/winbake/packer-plugin-winbake/internal/winrmsec"
)

// AnswerFiles are where Windows Setup and sysprep look for answer files;
// none may remain in a published image (they hold the build's passwords).
var AnswerFiles = []string{
	`C:\Windows\Panther\unattend.xml`,
	`C:\Windows\Panther\autounattend.xml`,
	`C:\Windows\Panther\Unattend\unattend.xml`,
	`C:\Windows\Panther\Unattend\autounattend.xml`,
	`C:\Windows\System32\Sysprep\unattend.xml`,
	`C:\unattend.xml`,
	`C:\autounattend.xml`,
}

// UserDataMarker is the file the verification's user data writes.
const UserDataMarker = `C:\ProgramData\winbake\verify-userdata.txt`

// UserDataScript is the user data: a PowerShell script (cloudbase-init
// runs "#ps1_sysnative" scripts with the 64-bit PowerShell) that writes the
// instance's UUID to UserDataMarker.
func UserDataScript(uuid string) []byte {
	return []byte("#ps1_sysnative\r\n" +
		"New-Item -ItemType Directory -Force -Path C:\\ProgramData\\winbake | Out-Null\r\n" +
		"Set-Content -Path " + UserDataMarker + " -Value '" + uuid + "'\r\n")
}

type guest struct {
	comm packersdk.Communicator
}

// checkCommandTimeout bounds each command of a check: they read the
// guest's state, dism /Get-Packages being the slowest at a minute or two
// under TCG.
const checkCommandTimeout = 10 * time.Minute

// run runs a cmd.exe command and returns its output (stdout and stderr as
// they came) and exit status.
func (g guest) run(ctx context.Context, command string) (string, int, error) {
	what := command
	if len(what) > 60 {
		what = what[:60] + "…"
	}
	var out guestcmd.Output
	r, err := guestcmd.Run(ctx, g.comm, guestcmd.Command{Line: command, What: what, Timeout: checkCommandTimeout,
		Limit: "the bound of a check's command", Stdout: &out, Stderr: &out})
	return out.String(), r.ExitStatus, err
}

// checker runs the checks and fills the report.
type checker struct {
	Config *Config
	Inst   *instance
	Serial serialFacts
	Server *metadataServer // nil without metadata_service
	Comm   packersdk.Communicator
	// WinRMErr is why WinRM did not connect, when it did not;
	// NoPassword says no logon was tried, as there is no password.
	WinRMErr   error
	NoPassword bool
	// Door is what the wire showed of WinRM, SerialText the console log
	// and Build the build's WinRM as the manifest records it (nil for
	// images from before it did).
	Door       winrmDoor
	SerialText string
	Build      *winrmsec.BuildWinRM
}

func (k *checker) Run(ctx context.Context, r *Report) {
	c := k.Config
	f := k.Serial
	switch {
	case f.SetupComplete:
		r.pass("first boot completes", "console: "+setupCompleteText)
	case f.PluginsDone > 1:
		r.pass("first boot completes", fmt.Sprintf("console: cloudbase-init finished %d runs (specialize and the service after OOBE)", f.PluginsDone))
	case k.Comm != nil:
		r.pass("first boot completes", "WinRM accepted the instance's account, which OOBE created")
	default:
		r.fail("first boot completes", "the console shows neither the end of Setup nor cloudbase-init's service run")
	}
	if f.NoMetadata && f.MetadataService == "" {
		r.fail("cloudbase-init ran its plugins", fmt.Sprintf("console: cloudbase-init logged %q: it read neither the config drive nor the metadata service (check its metadata_services and config_drive_* options)", noMetadataText))
	} else if len(f.Failed) > 0 {
		var failed []string
		for _, p := range f.Failed {
			failed = append(failed, fmt.Sprintf("%s (%s)", p.Plugin, p.Error))
		}
		r.fail("cloudbase-init ran its plugins", fmt.Sprintf("console: plugin(s) failed and run again at every boot: %s", strings.Join(failed, "; ")))
	} else if f.PluginsDone > 0 && len(f.Plugins) > 0 {
		ev := fmt.Sprintf("console: plugins %s; %q", strings.Join(f.Plugins, ", "), pluginsDoneText)
		if f.MetadataService != "" {
			ev = "metadata service " + f.MetadataService + "; " + ev
		}
		r.pass("cloudbase-init ran its plugins", ev)
	} else if len(f.Plugins) > 0 {
		r.fail("cloudbase-init ran its plugins", fmt.Sprintf("console: plugins %s started but cloudbase-init never logged %q", strings.Join(f.Plugins, ", "), pluginsDoneText))
	} else {
		r.fail("cloudbase-init ran its plugins", "console: no cloudbase-init plugin ran (is cloudbase-init installed, logging to COM1, and does it read a config drive or metadata service?)")
	}

	switch {
	case k.Comm != nil && *c.InjectAdminPassword:
		r.pass(checkWinRMLogon, fmt.Sprintf("logged on as %s with the metadata's admin_pass, over HTTP with NTLM and encrypted messages", c.Username))
	case k.Comm != nil:
		r.pass(checkWinRMLogon, fmt.Sprintf("logged on as %s with the password cloudbase-init posted, over HTTP with NTLM and encrypted messages", c.Username))
	case k.NoPassword:
		r.add(checkWinRMLogon, ResultNotRun, fmt.Sprintf("no password to log on with: %v", k.WinRMErr))
	case !boolOr(c.KeepWinRM, true) && k.Door.silent():
		r.add(checkWinRMLogon, ResultNotRun, fmt.Sprintf("nothing answers on port 5985, and the image is not meant to keep WinRM: %v", k.WinRMErr))
	case *c.InjectAdminPassword && contains(f.Plugins, "SetUserPasswordPlugin"):
		// Windows refuses an account that must change its password like
		// a wrong password (a 401); cloudbase-init forces that change of
		// an injected password unless first_logon_behaviour is "no".
		r.fail(checkWinRMLogon, fmt.Sprintf("no WinRM logon as %s with the metadata's admin_pass: %v (if cloudbase-init's first_logon_behaviour is not \"no\", the account must change that password first and Windows refuses network logons; winbake-sysprep writes \"no\" unless cloudbase_init.first_logon_behaviour says otherwise)", c.Username, k.WinRMErr))
	case *c.InjectAdminPassword:
		r.fail(checkWinRMLogon, fmt.Sprintf("no WinRM logon as %s with the metadata's admin_pass: %v", c.Username, k.WinRMErr))
	default:
		r.fail(checkWinRMLogon, fmt.Sprintf("no WinRM logon as %s with the password cloudbase-init posted: %v", c.Username, k.WinRMErr))
	}
	k.checkDoor(r)

	k.checkPassword(r)

	if k.Comm == nil {
		why := "no WinRM logon"
		if k.NoPassword {
			why = "no password to log on with"
		}
		for _, name := range k.guestCheckNames() {
			r.add(name, ResultNotRun, why)
		}
		return
	}
	g := guest{comm: k.Comm}
	k.checkHostname(ctx, g, r)
	k.checkUser(ctx, g, r)
	k.checkSSHKey(ctx, g, r)
	k.checkUserData(ctx, g, r)
	if !c.SkipUpdatesCheck {
		k.checkUpdates(ctx, g, r)
	}
	k.checkNoBuildPassword(ctx, g, r)
	k.checkNoBuildWinRMLeft(ctx, g, r)
	for _, ch := range c.Checks {
		out, code, err := g.run(ctx, ch.Command)
		switch {
		case err != nil:
			r.fail(ch.Name, fmt.Sprintf("could not run: %v", err))
		case strings.Contains(out, ch.Contains):
			r.pass(ch.Name, fmt.Sprintf("output contains %q (exit %d)", ch.Contains, code))
		default:
			r.fail(ch.Name, fmt.Sprintf("output (exit %d) lacks %q: %s", code, ch.Contains, trim(out)))
		}
	}
}

func (k *checker) guestCheckNames() []string {
	names := []string{"hostname set from metadata", "user created", "SSH public key installed", "user data ran"}
	if !k.Config.SkipUpdatesCheck {
		names = append(names, "updates installed")
	}
	names = append(names, "no build password left", checkNoBuildWinRM)
	for _, ch := range k.Config.Checks {
		names = append(names, ch.Name)
	}
	return names
}

func trim(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 300 {
		s = s[:297] + "..."
	}
	return s
}

func (k *checker) checkHostname(ctx context.Context, g guest, r *Report) {
	const name = "hostname set from metadata"
	out, _, err := g.run(ctx, "hostname")
	got := strings.TrimSpace(out)
	switch {
	case err != nil:
		r.fail(name, err.Error())
	case strings.EqualFold(got, k.Config.Hostname):
		r.pass(name, "hostname: "+got)
	default:
		r.fail(name, fmt.Sprintf("hostname is %q, the metadata says %q", got, k.Config.Hostname))
	}
}

func (k *checker) checkUser(ctx context.Context, g guest, r *Report) {
	const name = "user created"
	out, code, err := g.run(ctx, "net user "+k.Config.Username)
	switch {
	case err != nil:
		r.fail(name, err.Error())
	case code == 0 && strings.Contains(strings.ToLower(out), strings.ToLower(k.Config.Username)):
		r.pass(name, "net user "+k.Config.Username+": exit 0")
	default:
		r.fail(name, fmt.Sprintf("net user %s: exit %d: %s", k.Config.Username, code, trim(out)))
	}
}

func (k *checker) checkSSHKey(ctx context.Context, g guest, r *Report) {
	const name = "SSH public key installed"
	path := `C:\Users\` + k.Config.Username + `\.ssh\authorized_keys`
	key := strings.TrimSpace(k.Inst.Metadata.PublicKeys["winbake-verify"])
	fields := strings.Fields(key)
	out, code, err := g.run(ctx, `type "`+path+`"`)
	switch {
	case err != nil:
		r.fail(name, err.Error())
	case code == 0 && len(fields) > 1 && strings.Contains(out, fields[1]):
		r.pass(name, path+" holds the instance's key")
	default:
		r.fail(name, fmt.Sprintf("%s (exit %d) does not hold the instance's key: %s", path, code, trim(out)))
	}
}

func (k *checker) checkUserData(ctx context.Context, g guest, r *Report) {
	const name = "user data ran"
	out, code, err := g.run(ctx, `type `+UserDataMarker)
	switch {
	case err != nil:
		r.fail(name, err.Error())
	case code == 0 && strings.Contains(out, k.Inst.Metadata.UUID):
		r.pass(name, UserDataMarker+" holds the instance UUID")
	default:
		r.fail(name, fmt.Sprintf("%s (exit %d) lacks the instance UUID: %s", UserDataMarker, code, trim(out)))
	}
}

func (k *checker) checkPassword(r *Report) {
	const name = "admin password posted encrypted"
	if !k.Config.CheckPasswordPost {
		return
	}
	if k.Server == nil {
		r.fail(name, "no metadata service")
		return
	}
	posted := k.Server.PostedPassword()
	if posted == "" {
		r.fail(name, "nothing was posted to /openstack/latest/password")
		return
	}
	plain, err := decryptPassword(k.Inst.Key, posted)
	switch {
	case err != nil:
		r.fail(name, fmt.Sprintf("the posted password does not decrypt with the instance's private key: %v", err))
	case *k.Config.InjectAdminPassword && plain != k.Config.AdminPassword:
		r.fail(name, "the posted password decrypts, but it is not the metadata's admin_pass")
	default:
		r.pass(name, fmt.Sprintf("%d bytes of ciphertext posted; decrypted with the private key as nova get-password does", len(posted)))
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// postedPassword is the password cloudbase-init posted to the metadata
// service, decrypted.
func (k *checker) postedPassword() (string, error) {
	if k.Server == nil {
		return "", errors.New("no metadata service to read the posted password from")
	}
	posted := k.Server.PostedPassword()
	if posted == "" {
		return "", errors.New("cloudbase-init posted no password to the metadata service (inject_admin_password = false: WinRM logs on with the posted one)")
	}
	pw, err := decryptPassword(k.Inst.Key, posted)
	if err != nil {
		return "", fmt.Errorf("the posted password does not decrypt with the instance's private key: %w", err)
	}
	return pw, nil
}

// decryptPassword does what `nova get-password` does: base64, then RSA
// PKCS#1 v1.5 with the instance's private key.
func decryptPassword(key *rsa.PrivateKey, posted string) (string, error) {
	ct, err := base64.StdEncoding.DecodeString(strings.TrimSpace(posted))
	if err != nil {
		return "", err
	}
	pt, err := rsa.DecryptPKCS1v15(nil, key, ct)
	if err != nil {
		return "", err
	}
	return string(pt), nil
}

func (k *checker) checkUpdates(ctx context.Context, g guest, r *Report) {
	const name = "updates installed"
	out, code, err := g.run(ctx, `type `+guestcontract.UpdatesRecordPath)
	if err != nil {
		r.fail(name, err.Error())
		return
	}
	if code != 0 {
		r.pass(name, guestcontract.UpdatesRecordPath+" is not in the image: no winbake-updates packages to check")
		return
	}
	var m guestcontract.UpdatesRecord
	if err := json.Unmarshal([]byte(strings.TrimPrefix(strings.TrimSpace(out), "\ufeff")), &m); err != nil {
		r.fail(name, fmt.Sprintf("%s is not winbake-updates' manifest: %v", guestcontract.UpdatesRecordPath, err))
		return
	}
	pkgs, code, err := g.run(ctx, `dism /English /Online /Get-Packages`)
	if err != nil || code != 0 {
		r.fail(name, fmt.Sprintf("dism /Get-Packages: exit %d %v: %s", code, err, trim(pkgs)))
		return
	}
	states := dismPackageStates(pkgs)
	var ok, bad []string
	for _, p := range m.Packages {
		label := p.File
		if p.KB != "" {
			label = p.KB
		}
		if p.Result == "not_applicable" {
			continue
		}
		recorded := p.Result == "installed" || p.Result == "already_installed"
		// DISM is the truth: a package deferred to first boot may have gone
		// in by now, and one recorded as installed may have been removed.
		// DISM lists packages by CBS identity; the KB is in the identity
		// only for packages named Package_for_KB<n> (not for cumulative
		// updates, Package_for_RollupFix, or servicing stacks).
		key := strings.ToLower(p.Identity)
		if key == "" && p.KB != "" {
			kb := strings.ToUpper(p.KB)
			if !strings.HasPrefix(kb, "KB") {
				kb = "KB" + kb
			}
			key, label = kb, kb
		}
		if key == "" {
			// Nothing to look up in DISM: the record is all there is.
			if recorded {
				ok = append(ok, label)
			} else {
				bad = append(bad, fmt.Sprintf("%s (%s in the manifest)", label, p.Result))
			}
			continue
		}
		state, listed := states[key]
		switch {
		case listed && (state == "Installed" || state == "Superseded"):
			if !recorded {
				label += fmt.Sprintf(" (%s in the manifest, installed at first boot)", p.Result)
			}
			ok = append(ok, label)
		case listed:
			bad = append(bad, fmt.Sprintf("%s (%s in the manifest, DISM state %s)", label, p.Result, state))
		case recorded:
			bad = append(bad, label+" (not in dism /Get-Packages)")
		default:
			bad = append(bad, fmt.Sprintf("%s (%s in the manifest, not in dism /Get-Packages)", label, p.Result))
		}
	}
	if len(bad) > 0 {
		r.fail(name, "missing: "+strings.Join(bad, ", "))
		return
	}
	r.pass(name, fmt.Sprintf("%d package(s) installed: %s", len(ok), strings.Join(ok, ", ")))
}

// dismPackageStates maps the packages of `dism /Get-Packages` output to
// their State ("Installed", "Install Pending", "Superseded", "Staged"...),
// by identity (lower case) and by the KB number an identity carries
// ("KB5034439"). A KB with several packages keeps its installed one.
func dismPackageStates(out string) map[string]string {
	states := map[string]string{}
	var identity, kb string
	for _, line := range strings.Split(out, "\n") {
		key, value, found := strings.Cut(line, ":")
		if !found {
			continue
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch key {
		case "Package Identity":
			identity, kb = strings.ToLower(value), kbPattern.FindString(strings.ToUpper(value))
		case "State":
			if identity != "" {
				states[identity] = value
			}
			if kb != "" && states[kb] != "Installed" {
				states[kb] = value
			}
		}
	}
	return states
}

var kbPattern = regexp.MustCompile(`KB[0-9]+`)

func (k *checker) checkNoBuildPassword(ctx context.Context, g guest, r *Report) {
	const name = "no build password left"
	var problems []string
	for _, path := range AnswerFiles {
		out, code, err := g.run(ctx, `type "`+path+`"`)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", path, err))
			continue
		}
		if code != 0 {
			continue
		}
		holds := false
		for _, p := range k.Config.BuildPasswords {
			holds = holds || strings.Contains(out, p) || strings.Contains(out, base64.StdEncoding.EncodeToString(utf16le(p+"Password")))
		}
		if holds {
			problems = append(problems, path+" remains and holds a build password")
		} else {
			problems = append(problems, path+" remains")
		}
	}
	const winlogon = `HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon`
	out, _, err := g.run(ctx, `reg query "`+winlogon+`" /v AutoAdminLogon`)
	if err == nil && regDWORDOrString(out, "AutoAdminLogon") == "1" {
		problems = append(problems, "automatic logon is on (Winlogon AutoAdminLogon = 1)")
	}
	out, code, err := g.run(ctx, `reg query "`+winlogon+`" /v DefaultPassword`)
	if err == nil && code == 0 && strings.Contains(out, "DefaultPassword") {
		problems = append(problems, "Winlogon DefaultPassword is set")
	}
	if len(problems) > 0 {
		r.fail(name, strings.Join(problems, "; "))
		return
	}
	r.pass(name, fmt.Sprintf("no answer file in %d places; automatic logon off", len(AnswerFiles)))
}

// utf16le encodes s as unattend.xml's PlainText=false passwords do before
// base64 (the password followed by "Password").
func utf16le(s string) []byte {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r), byte(r>>8))
	}
	return b
}

// regDWORDOrString reads the data of value name from reg query output:
// "    AutoAdminLogon    REG_SZ    1".
func regDWORDOrString(out, name string) string {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && strings.EqualFold(f[0], name) {
			v := f[len(f)-1]
			if v == "0x1" {
				return "1"
			}
			return v
		}
	}
	return ""
}
