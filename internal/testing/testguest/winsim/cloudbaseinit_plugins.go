package winsim

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// cloudbaseShared is the plugins' shared_data (plugins/common/constants.py
// SHARED_DATA_USERNAME and SHARED_DATA_PASSWORD).
type cloudbaseShared struct {
	username, password       string
	hasUsername, hasPassword bool
}

// cloudbasePluginRun is one plugin's view of the run.
type cloudbasePluginRun struct {
	m      *Machine
	conf   cloudbaseConfig
	svc    cloudbaseService
	log    *cloudbaseLog
	shared *cloudbaseShared
	res    *CloudbaseInitResult
}

// cloudbasePlugin is a plugin's execute(service, shared_data): the
// plugin state to record and whether it asks for a reboot; an error is
// an exception the plugin raised.
type cloudbasePlugin func(ctx context.Context, p *cloudbasePluginRun) (status int, reboot bool, err error)

var cloudbasePlugins map[string]cloudbasePlugin

func init() {
	cloudbasePlugins = map[string]cloudbasePlugin{
		"cloudbaseinit.plugins.common.sethostname.SetHostNamePlugin":                          cloudbaseSetHostName,
		"cloudbaseinit.plugins.windows.createuser.CreateUserPlugin":                           cloudbaseCreateUser,
		"cloudbaseinit.plugins.common.sshpublickeys.SetUserSSHPublicKeysPlugin":               cloudbaseSSHKeys,
		"cloudbaseinit.plugins.common.setuserpassword.SetUserPasswordPlugin":                  cloudbaseSetPassword,
		"cloudbaseinit.plugins.common.userdata.UserDataPlugin":                                cloudbaseUserData,
		"cloudbaseinit.plugins.windows.winrmcertificateauth.ConfigWinRMCertificateAuthPlugin": cloudbaseWinRMCertificateAuth,
		"cloudbaseinit.plugins.windows.winrmlistener.ConfigWinRMListenerPlugin":               cloudbaseWinRMListener,
	}
}

// --- SetHostNamePlugin ---------------------------------------------------------------

// cloudbaseSetHostName is plugins/common/sethostname.py with
// utils/hostname.py set_hostname: the metadata's host name up to its
// first dot, cut to 15 characters (netbios_host_name_compatibility), a
// trailing "-" made "0"; a name other than the active one is set and
// needs a reboot.
func cloudbaseSetHostName(ctx context.Context, p *cloudbasePluginRun) (int, bool, error) {
	const logger = "cloudbaseinit.utils.hostname"
	name, err := p.svc.hostName(ctx)
	if err != nil {
		return 0, false, err
	}
	if name == "" {
		p.log.log("DEBUG", "cloudbaseinit.plugins.common.sethostname", "Hostname not found in metadata")
		return pluginExecutionDone, false, nil
	}
	name, _, _ = strings.Cut(name, ".")
	if p.conf.boolean("netbios_host_name_compatibility") && len(name) > 15 {
		p.log.log("WARNING", logger, "Truncating host name for Netbios compatibility. Old name: %s, new name: %s", name, name[:15])
		name = name[:15]
	}
	if strings.HasSuffix(name, "-") {
		name = name[:len(name)-1] + "0"
	}
	if strings.EqualFold(name, p.m.ComputerName()) {
		p.log.log("DEBUG", logger, "Hostname already set to: %s", name)
		return pluginExecutionDone, false, nil
	}
	p.log.log("INFO", logger, "Setting hostname: %s", name)
	if err := p.m.SetComputerName(name); err != nil {
		return 0, false, err
	}
	return pluginExecutionDone, true, nil
}

// --- CreateUserPlugin -----------------------------------------------------------------

// cloudbaseLocalGroups are the built-in local groups the model knows;
// add_user_to_local_group with another name is not modelled.
var cloudbaseLocalGroups = []string{"Administrators", "Users", "Remote Desktop Users", "Remote Management Users"}

// cloudbaseCreateUser is plugins/common/createuser.py
// BaseCreateUserPlugin.execute with plugins/windows/createuser.py: the
// metadata's admin_username or the username option; a random password
// (user_password_length) set on an existing account or a new one (only a
// new account's is shared with the later plugins); a logon session that
// creates the profile; the groups option.
func cloudbaseCreateUser(ctx context.Context, p *cloudbasePluginRun) (int, bool, error) {
	const logger = "cloudbaseinit.plugins.common.createuser"
	admin, err := p.svc.adminUsername(ctx)
	if err != nil {
		return 0, false, err
	}
	user := admin
	if user == "" {
		user = p.conf.str("username")
	}
	p.shared.username, p.shared.hasUsername = user, true
	password, err := cloudbaseRandomPassword(p.conf.integer("user_password_length"))
	if err != nil {
		return 0, false, err
	}
	if name, exists := p.m.userExists(user); exists {
		user = name
		p.log.log("INFO", logger, "Setting password for existing user \"%s\"", user)
		if err := p.setUserPassword(user, password); err != nil {
			return 0, false, err
		}
	} else {
		p.log.log("INFO", logger, "Creating user \"%s\" and setting password", user)
		if err := p.m.createAccount(user); err != nil {
			return 0, false, err
		}
		p.res.Passwords[user] = password
		p.shared.password, p.shared.hasPassword = password, true
	}
	// windows/createuser.py _create_user_logon: LogonUserW (interactive)
	// and the profile; a failure is logged, not raised.
	if p.m.PasswordMustChange(user) {
		p.log.log("ERROR", "cloudbaseinit.plugins.windows.createuser", "Cannot create a user logon session for user: \"%s\"", user)
	} else if err := p.m.logon(user); err != nil {
		return 0, false, err
	}
	groups := p.conf.list("groups")
	for _, g := range groups {
		if !contains(cloudbaseLocalGroups, g) {
			p.m.unsupportedf("cloudbase-init: adding %s to the local group %q is not modelled (known groups: %s)", user, g, strings.Join(cloudbaseLocalGroups, ", "))
		}
	}
	_ = p.m.updateAccount(user, func(a *LocalAccount) {
		for _, g := range groups {
			found := false
			for _, have := range a.Groups {
				found = found || strings.EqualFold(have, g)
			}
			if !found {
				a.Groups = append(a.Groups, g)
			}
		}
	})
	return pluginExecutionDone, false, nil
}

// setUserPassword is osutils/windows.py set_user_password (the password,
// and UF_DONT_EXPIRE_PASSWD).
func (p *cloudbasePluginRun) setUserPassword(user, password string) error {
	if p.m.PasswordMustChange(user) {
		// NetUserSetInfo level 1 on an account whose password expired:
		// whether the expiry stays is not modelled.
		p.m.unsupportedf("cloudbase-init: setting the password of %s, which must change its password, is not modelled", user)
	}
	p.res.Passwords[user] = password
	return nil
}

// --- SetUserSSHPublicKeysPlugin -------------------------------------------------------

// cloudbaseSSHKeys is plugins/common/sshpublickeys.py: the metadata's
// public keys, one a line (text mode: CRLF), to <home>\.ssh\authorized_keys
// of admin_username or the username option; no profile raises.
func cloudbaseSSHKeys(ctx context.Context, p *cloudbasePluginRun) (int, bool, error) {
	const logger = "cloudbaseinit.plugins.common.sshpublickeys"
	keys, err := p.svc.publicKeys(ctx)
	if err != nil {
		return 0, false, err
	}
	if len(keys) == 0 {
		p.log.log("DEBUG", logger, "Public keys not found in metadata")
		return pluginExecutionDone, false, nil
	}
	user, err := p.svc.adminUsername(ctx)
	if err != nil {
		return 0, false, err
	}
	if user == "" {
		user = p.conf.str("username")
	}
	home, ok := p.m.userHome(user)
	if !ok {
		return 0, false, errors.New("User profile not found!")
	}
	p.log.log("DEBUG", logger, "User home: %s", home)
	dir := home + `\.ssh`
	if err := p.m.files.MkdirAll(dir); err != nil {
		return 0, false, err
	}
	path := dir + `\authorized_keys`
	p.log.log("INFO", logger, "Writing SSH public keys in: %s", path)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "\r\n")
	}
	return pluginExecutionDone, false, p.m.files.WriteFile(path, []byte(b.String()))
}

// userHome is osutils get_user_home: the profile's directory once the
// account has logged on (ProfileList), else none.
func (m *Machine) userHome(user string) (string, bool) {
	name, ok := m.userExists(user)
	if !ok {
		return "", false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.st.Profiles {
		if strings.EqualFold(p, name) {
			return `C:\Users\` + p, true
		}
	}
	return "", false
}

// --- UserDataPlugin ----------------------------------------------------------------

// userDataScriptTypes are plugins/common/userdatautils.py _SCRIPTS, in
// their order: the first whose pattern matches runs the data.
var userDataScriptTypes = []struct {
	pattern *regexp.Regexp
	kind    string
}{
	{regexp.MustCompile(`^rem\s+cmd\s`), "cmd"},
	{regexp.MustCompile(`^#!\s*/usr/bin/env\s+python\s`), "python"},
	{regexp.MustCompile(`^#!`), "bash"},
	{regexp.MustCompile(`^#(ps1|ps1_sysnative)\s`), "ps1"},
	{regexp.MustCompile(`^#ps1_x86\s`), "ps1_x86"},
	{regexp.MustCompile(`</?(script|powershell)>`), "ec2"},
}

// cloudbaseUserData is plugins/common/userdata.py UserDataPlugin: no user
// data (or a 404) is done; a PEM certificate is left to
// ConfigWinRMCertificateAuthPlugin; other data runs through
// userdatautils.py execute_user_data_script: "#ps1" and "#ps1_sysnative"
// scripts as <temp>\<uuid>.ps1 with powershell.exe -ExecutionPolicy
// RemoteSigned -NonInteractive -File; the exit code maps to the plugin
// state as execcmd.py get_plugin_return_value does (1001: reboot; 1002:
// run again at the next boot; 1003: both). Multipart MIME, #cloud-config
// and the other script kinds are not modelled.
func cloudbaseUserData(ctx context.Context, p *cloudbasePluginRun) (int, bool, error) {
	const logger = "cloudbaseinit.plugins.common.userdata"
	const utilsLogger = "cloudbaseinit.plugins.common.userdatautils"
	data, err := p.svc.userData(ctx)
	switch {
	case isNotExisting(err):
		return pluginExecutionDone, false, nil
	case err != nil:
		return 0, false, err
	case len(data) == 0:
		return pluginExecutionDone, false, nil
	}
	p.log.log("DEBUG", logger, "User data content length: %d", len(data))
	switch {
	case bytes.HasPrefix(data, []byte("Content-Type: multipart")):
		p.m.unsupportedf("cloudbase-init multipart user data is not modelled")
		return pluginExecutionDone, false, nil
	case bytes.HasPrefix(data, []byte("#cloud-config")):
		p.m.unsupportedf("cloudbase-init user data starting with \"#cloud-config\" is not modelled")
		return pluginExecutionDone, false, nil
	case bytes.HasPrefix(bytes.TrimSpace(data), []byte(pemHeader)):
		p.log.log("DEBUG", logger, "Found X509 certificate in userdata")
		return pluginExecutionDone, false, nil
	}
	kind := ""
	for _, t := range userDataScriptTypes {
		if t.pattern.Match(data) {
			kind = t.kind
			break
		}
	}
	switch kind {
	case "":
		p.log.log("WARNING", utilsLogger, "Unsupported user_data format")
		p.log.log("INFO", utilsLogger, "User_data script ended with return code: %d", 0)
		return pluginExecutionDone, false, nil
	case "ps1":
	default:
		first, _, _ := strings.Cut(string(data), "\n")
		p.m.unsupportedf("cloudbase-init user data of kind %s (%q) is not modelled", kind, strings.TrimSpace(first))
		return pluginExecutionDone, false, nil
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	id[6], id[8] = id[6]&0x0f|0x40, id[8]&0x3f|0x80
	script := fmt.Sprintf(`C:\Windows\Temp\%x-%x-%x-%x-%x.ps1`, id[0:4], id[4:6], id[6:8], id[8:10], id[10:])
	if err := p.m.files.WriteFile(script, data); err != nil {
		return 0, false, err
	}
	defer func() { _ = p.m.files.Remove(script) }() // cloudbase-init's execute_user_data_script removes it the same way, ignoring errors
	var out, errOut bytes.Buffer
	sys := p.m.system(logonInteractive)
	code, err := sys.Processes().Run(ctx, `C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`,
		[]string{"-ExecutionPolicy", "RemoteSigned", "-NonInteractive", "-File", script}, &out, &errOut)
	ret := int32(code)
	if err != nil {
		p.log.log("WARNING", utilsLogger, "An error occurred during user_data execution: '%s'", err)
		ret = 0
	} else {
		p.log.log("DEBUG", utilsLogger, "User_data stdout:\n%s", out.String())
		p.log.log("DEBUG", utilsLogger, "User_data stderr:\n%s", errOut.String())
	}
	p.log.log("INFO", utilsLogger, "User_data script ended with return code: %d", ret)
	status, reboot := pluginExecutionDone, false
	if ret >= 1001 && ret <= 1003 {
		reboot = ret&1 != 0
		if ret&2 != 0 {
			status = pluginExecuteOnNextBoot
		}
	}
	return status, reboot, nil
}

// gunzipIfGzip is get_decoded_user_data: gzip data is unpacked.
func gunzipIfGzip(data []byte) ([]byte, error) {
	if !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		return data, nil
	}
	r, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// --- ConfigWinRMCertificateAuthPlugin -------------------------------------------------

// cloudbaseWinRMCertificateAuth is plugins/windows/winrmcertificateauth.py
// ConfigWinRMCertificateAuthPlugin: the credentials (shared username, else
// the username option; shared password, else the metadata's admin
// password, else it raises; the shared password is cleared), then the
// service's client certificates (get_client_auth_certs, which raises when
// the service has no such item). Without certificates it is done;
// mapping certificates to the account is not modelled.
func cloudbaseWinRMCertificateAuth(ctx context.Context, p *cloudbasePluginRun) (int, bool, error) {
	const logger = "cloudbaseinit.plugins.windows.winrmcertificateauth"
	user := p.conf.str("username")
	if p.shared.hasUsername {
		user = p.shared.username
	}
	if user == "" {
		return 0, false, errors.New("Cannot execute plugin as the username has not been set in the plugins shared data, nor it was found in config file.")
	}
	if !p.shared.hasPassword || p.shared.password == "" {
		pw, err := p.svc.adminPassword(ctx)
		if err != nil {
			return 0, false, err
		}
		if pw == "" {
			return 0, false, errors.New("Cannot execute plugin as the password has not been set in the plugins shared data, nor it was retrieved from the metadata service.")
		}
	}
	p.shared.password, p.shared.hasPassword = "", false
	certs, err := p.svc.clientAuthCerts(ctx)
	if err != nil {
		return 0, false, err
	}
	if len(certs) == 0 {
		p.log.log("INFO", logger, "WinRM certificate authentication cannot be configured as a certificate has not been provided in the metadata")
		return pluginExecutionDone, false, nil
	}
	p.m.unsupportedf("cloudbase-init: mapping %d WinRM client certificate(s) to %s is not modelled", len(certs), user)
	return pluginExecutionDone, false, nil
}

// cloudbaseRandomPassword is osutils generate_random_password: base64 of
// 256 random bytes without "/" and "+", cut to length, drawn again until
// it has a lower-case letter, an upper-case letter and a digit
// (WindowsUtils); fewer than 3 characters raise.
func cloudbaseRandomPassword(length int) (string, error) {
	if length < 3 {
		return "", errors.New("Password can not have less than 3 characters!")
	}
	for {
		raw := make([]byte, 256)
		if _, err := rand.Read(raw); err != nil {
			return "", err
		}
		pw := strings.NewReplacer("/", "", "+", "").Replace(base64.StdEncoding.EncodeToString(raw))
		if len(pw) > length {
			pw = pw[:length]
		}
		if strings.ContainsAny(pw, "abcdefghijklmnopqrstuvwxyz") && strings.ContainsAny(pw, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") && strings.ContainsAny(pw, "0123456789") {
			return pw, nil
		}
	}
}
