package winsim

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Cloudbase-init as its service runs at boot: the simulation reads the
// configuration file the service's ImagePath names, finds the metadata the
// way the configured metadata services do, and runs the configured plugins,
// logging to the serial port of logging_serial_port_settings in
// cloudbase-init's own line format:
//
//	2026-11-22 08:00:00.123 1234 INFO cloudbaseinit.init [-] Executing plugin 'SetHostNamePlugin'
//
// Metadata services: ConfigDriveService (a CD whose volume label is
// config-2 holding openstack/latest/meta_data.json and user_data, read
// from the mounted medium) and HttpService (the OpenStack metadata API at
// metadata_base_url, default http://169.254.169.254/). Others are not
// modelled and are reported.
//
// Plugins: SetHostNamePlugin (the computer name becomes active at the
// next boot; a reboot is asked for), CreateUserPlugin (username, groups),
// SetUserSSHPublicKeysPlugin (authorized_keys under the user's .ssh),
// SetUserPasswordPlugin (admin_pass with inject_user_password, else the
// random password; with a public key and a metadata service that takes
// it, posted RSA-encrypted (PKCS#1 v1.5) and base64-encoded, once) and
// UserDataPlugin (#ps1 and #ps1_sysnative scripts run by the simulated
// PowerShell). A plugin that is done for the instance (the registry value
// HKLM\SOFTWARE\Cloudbase Solutions\Cloudbase-Init\<instance id>\Plugins\<name>
// is 1) is skipped, as on every later boot.

const (
	cloudbaseStateKey = `HKLM\SOFTWARE\Cloudbase Solutions\Cloudbase-Init`
	// pluginExecutionDone is cloudbase-init's PLUGIN_EXECUTION_DONE.
	pluginExecutionDone = 1
	// cloudbasePostPasswordVersion is the metadata version HttpService
	// posts the password to (its _POST_PASSWORD_MD_VER).
	cloudbasePostPasswordVersion = "2013-04-04"
	cloudbaseDefaultMetadataURL  = "http://169.254.169.254/"
)

// cloudbaseDefaultServices and cloudbaseDefaultPlugins are cloudbase-init's
// defaults when the configuration names none.
var (
	cloudbaseDefaultServices = []string{
		"cloudbaseinit.metadata.services.httpservice.HttpService",
		"cloudbaseinit.metadata.services.configdrive.ConfigDriveService",
		"cloudbaseinit.metadata.services.ec2service.EC2Service",
		"cloudbaseinit.metadata.services.maasservice.MaaSHttpService",
		"cloudbaseinit.metadata.services.cloudstack.CloudStack",
		"cloudbaseinit.metadata.services.opennebulaservice.OpenNebulaService",
	}
	cloudbaseDefaultPlugins = []string{
		"cloudbaseinit.plugins.common.mtu.MTUPlugin",
		"cloudbaseinit.plugins.windows.ntpclient.NTPClientPlugin",
		"cloudbaseinit.plugins.common.sethostname.SetHostNamePlugin",
		"cloudbaseinit.plugins.windows.createuser.CreateUserPlugin",
		"cloudbaseinit.plugins.common.networkconfig.NetworkConfigPlugin",
		"cloudbaseinit.plugins.windows.licensing.WindowsLicensingPlugin",
		"cloudbaseinit.plugins.common.sshpublickeys.SetUserSSHPublicKeysPlugin",
		"cloudbaseinit.plugins.windows.extendvolumes.ExtendVolumesPlugin",
		"cloudbaseinit.plugins.common.userdata.UserDataPlugin",
		"cloudbaseinit.plugins.common.setuserpassword.SetUserPasswordPlugin",
		"cloudbaseinit.plugins.windows.winrmlistener.ConfigWinRMListenerPlugin",
		"cloudbaseinit.plugins.windows.winrmcertificateauth.ConfigWinRMCertificateAuthPlugin",
		"cloudbaseinit.plugins.common.localscripts.LocalScriptsPlugin",
	}
)

// Volume is a mounted medium the guest sees: its volume label and where
// its files are on the host running the simulation.
type Volume struct {
	Label string
	Dir   string
}

// CloudbaseInitRun is what one start of the cloudbase-init service sees.
type CloudbaseInitRun struct {
	// Console is the serial port COM1 (the guest's console).
	Console io.Writer
	// CDs are the CD-ROM volumes attached to the machine.
	CDs []Volume
	// HTTPClient reaches the metadata API (default: a client with a 10 s
	// timeout).
	HTTPClient *http.Client
	// PID is the process id in the log lines (default 1000 + boot count).
	PID int
}

// CloudbaseInitResult is what the run did.
type CloudbaseInitResult struct {
	// Service is the metadata service loaded ("" when none was found).
	Service string
	// InstanceID is the metadata's instance id.
	InstanceID string
	// Passwords maps the accounts whose password the run set to it.
	Passwords map[string]string
	// Reboot: a plugin asked for a reboot and allow_reboot is true; the
	// remaining plugins run at the next boot.
	Reboot bool
}

// cloudbaseConfig is cloudbase-init.conf: the [DEFAULT] options, and the
// options of the other sections ([openstack], [maas]) as
// "<section>.<option>".
type cloudbaseConfig struct {
	path string
	opts map[string]string
}

// groupOpt is an option of a section that was a [DEFAULT] option once
// (oslo.config's deprecated_name and deprecated_group).
func (c cloudbaseConfig) groupOpt(section, name, deprecated, def string) string {
	if v, ok := c.opts[section+"."+name]; ok {
		return v
	}
	return c.str(deprecated, def)
}

func (c cloudbaseConfig) str(name, def string) string {
	if v, ok := c.opts[name]; ok {
		return v
	}
	return def
}

func (c cloudbaseConfig) list(name string, def []string) []string {
	v, ok := c.opts[name]
	if !ok {
		return def
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (c cloudbaseConfig) boolean(name string, def bool) bool {
	v, ok := c.opts[name]
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(strings.ToLower(v))
	if err != nil {
		return def
	}
	return b
}

func (c cloudbaseConfig) integer(name string, def int) int {
	if n, err := strconv.Atoi(c.str(name, "")); err == nil {
		return n
	}
	return def
}

// parseCloudbaseConfig reads the oslo.config INI file.
func parseCloudbaseConfig(path string, data []byte) (cloudbaseConfig, error) {
	c := cloudbaseConfig{path: path, opts: map[string]string{}}
	section := ""
	for i, line := range strings.Split(strings.TrimPrefix(string(data), "\ufeff"), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
			continue
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.ToLower(line[1 : len(line)-1])
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return c, fmt.Errorf("%s line %d: %q is not an option", path, i+1, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if section == "default" {
			c.opts[k] = v
		} else {
			c.opts[section+"."+k] = v
		}
	}
	return c, nil
}

// cloudbaseLog writes cloudbase-init's log lines to the serial port.
type cloudbaseLog struct {
	w     io.Writer
	pid   int
	debug bool
	clock Clock
}

func (l *cloudbaseLog) log(level, logger, format string, args ...any) {
	if l.w == nil || level == "DEBUG" && !l.debug {
		return
	}
	msg := fmt.Sprintf(format, args...)
	ts := l.clock.Now().Format("2006-01-02 15:04:05.000")
	for _, line := range strings.Split(strings.TrimRight(msg, "\r\n"), "\n") {
		fmt.Fprintf(l.w, "%s %d %s %s [-] %s\r\n", ts, l.pid, level, logger, strings.TrimRight(line, "\r"))
	}
}

// CloudbaseInitService is the configuration file the cloudbase-init
// service starts with (the --config-file of its ImagePath), and whether
// the service starts at boot. ok is false when cloudbase-init is not
// installed.
func (m *Machine) CloudbaseInitService() (configFile string, automatic, ok bool) {
	reg := m.RegistryFor(m.opts.Users[0])
	image, found, err := reg.String(cloudbaseServiceKey, "ImagePath")
	if err != nil || !found {
		return "", false, false
	}
	start, _, _ := reg.DWORD(cloudbaseServiceKey, "Start")
	const flag = "--config-file"
	i := strings.Index(image, flag)
	if i < 0 {
		return "", start == 2, true
	}
	rest := strings.TrimSpace(image[i+len(flag):])
	if strings.HasPrefix(rest, `"`) {
		end := strings.Index(rest[1:], `"`)
		if end < 0 {
			return "", start == 2, true
		}
		return rest[1 : end+1], start == 2, true
	}
	return strings.Fields(rest)[0], start == 2, true
}

// cloudbaseMetadata is what a metadata service gives the plugins.
type cloudbaseMetadata struct {
	name     string
	meta     map[string]any
	userData []byte
	// post posts the encrypted password; nil when the service cannot
	// (ConfigDriveService).
	post func(ctx context.Context, b64 string) error
	// passwordSet reports whether a password was posted already.
	passwordSet func(ctx context.Context) bool
}

func (md *cloudbaseMetadata) str(key string) string {
	s, _ := md.meta[key].(string)
	return s
}

// publicKeys are meta_data's public_keys values and keys[].data, without
// duplicates, in a stable order.
func (md *cloudbaseMetadata) publicKeys() []string {
	var out []string
	seen := map[string]bool{}
	add := func(k string) {
		k = strings.TrimSpace(k)
		if k != "" && !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	if pk, ok := md.meta["public_keys"].(map[string]any); ok {
		var names []string
		for n := range pk {
			names = append(names, n)
		}
		sortFold(names)
		for _, n := range names {
			s, _ := pk[n].(string)
			add(s)
		}
	}
	if keys, ok := md.meta["keys"].([]any); ok {
		for _, k := range keys {
			if km, ok := k.(map[string]any); ok && km["type"] == "ssh" {
				s, _ := km["data"].(string)
				add(s)
			}
		}
	}
	return out
}

// RunCloudbaseInit runs the cloudbase-init service once, as a boot starts
// it. It returns an error only when cloudbase-init is not installed or its
// configuration cannot be read (the service would not start).
func (m *Machine) RunCloudbaseInit(ctx context.Context, run CloudbaseInitRun) (CloudbaseInitResult, error) {
	var res CloudbaseInitResult
	confPath, _, ok := m.CloudbaseInitService()
	if !ok {
		return res, errors.New("cloudbase-init is not installed (no cloudbase-init service)")
	}
	if confPath == "" {
		return res, errors.New("the cloudbase-init service's ImagePath names no --config-file")
	}
	data, err := m.files.ReadFile(confPath)
	if err != nil {
		return res, fmt.Errorf("cloudbase-init: %s: %w", confPath, err)
	}
	conf, err := parseCloudbaseConfig(confPath, data)
	if err != nil {
		return res, err
	}
	l := &cloudbaseLog{pid: run.PID, debug: conf.boolean("debug", false), clock: m.clock}
	if l.pid == 0 {
		m.mu.Lock()
		l.pid = 1000 + 4*len(m.st.Boots)
		m.mu.Unlock()
	}
	if port, _, _ := strings.Cut(conf.str("logging_serial_port_settings", ""), ","); strings.EqualFold(port, "COM1") {
		l.w = run.Console
	}
	if run.HTTPClient == nil {
		run.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	const initLogger = "cloudbaseinit.init"
	l.log("INFO", initLogger, "Cloudbase-Init version: 1.1.6")

	md := m.cloudbaseFindMetadata(ctx, conf, run, l)
	if md == nil {
		l.log("ERROR", initLogger, "No metadata service found")
		l.log("INFO", initLogger, "Plugins execution done")
		return res, nil
	}
	res.Service = md.name
	l.log("INFO", initLogger, "Metadata service loaded: '%s'", md.name)
	res.InstanceID = md.str("uuid")
	l.log("DEBUG", initLogger, "Instance id: %s", res.InstanceID)

	reg := m.RegistryFor(m.opts.Users[0])
	section := cloudbaseStateKey + `\` + res.InstanceID + `\Plugins`
	if res.InstanceID == "" {
		section = cloudbaseStateKey + `\Plugins`
	}
	l.log("INFO", initLogger, "Executing plugins for stage 'MAIN':")
	shared := map[string]string{}
	res.Passwords = map[string]string{}
	allowReboot := conf.boolean("allow_reboot", true)
	for _, class := range conf.list("plugins", cloudbaseDefaultPlugins) {
		name := class[strings.LastIndexByte(class, '.')+1:]
		if done, _, _ := reg.DWORD(section, name); done == pluginExecutionDone {
			l.log("DEBUG", initLogger, "Plugin '%s' execution already done, skipping", name)
			continue
		}
		plugin := cloudbasePlugins[class]
		if plugin == nil {
			m.unsupportedf("cloudbase-init plugin %s is not modelled", class)
			l.log("ERROR", initLogger, "plugin '%s' failed with error 'not modelled by the stand-in'", name)
			continue
		}
		l.log("INFO", initLogger, "Executing plugin '%s'", name)
		reboot, err := plugin(ctx, &cloudbasePluginRun{m: m, conf: conf, md: md, log: l, shared: shared, res: &res})
		if err != nil {
			l.log("ERROR", initLogger, "plugin '%s' failed with error '%s'", name, err)
			continue
		}
		if err := reg.SetDWORD(section, name, pluginExecutionDone); err != nil {
			return res, err
		}
		if reboot && allowReboot {
			res.Reboot = true
			break
		}
	}
	if res.Reboot {
		l.log("INFO", initLogger, "Rebooting")
		return res, nil
	}
	l.log("INFO", initLogger, "Plugins execution done")
	if conf.boolean("stop_service_on_exit", true) {
		l.log("INFO", initLogger, "Stopping Cloudbase-Init service")
	}
	return res, nil
}

// cloudbaseFindMetadata loads the first configured metadata service that
// finds metadata, as cloudbase-init's get_metadata_service does.
func (m *Machine) cloudbaseFindMetadata(ctx context.Context, conf cloudbaseConfig, run CloudbaseInitRun, l *cloudbaseLog) *cloudbaseMetadata {
	const factoryLogger = "cloudbaseinit.metadata.factory"
	for _, class := range conf.list("metadata_services", cloudbaseDefaultServices) {
		var md *cloudbaseMetadata
		var err error
		switch class {
		case "cloudbaseinit.metadata.services.configdrive.ConfigDriveService":
			md, err = cloudbaseConfigDrive(conf, run, l)
		case "cloudbaseinit.metadata.services.httpservice.HttpService":
			md, err = cloudbaseHTTP(ctx, conf, run, l, m.clock)
		case "cloudbaseinit.metadata.services.maasservice.MaaSHttpService":
			md, err = cloudbaseMAAS(ctx, conf, run, l, m.clock)
		default:
			m.unsupportedf("cloudbase-init metadata service %s is not modelled", class)
			err = errors.New("not modelled by the stand-in")
		}
		if err != nil {
			l.log("ERROR", factoryLogger, "Failed to load metadata service '%s' with error: %s", class, err)
			continue
		}
		if md != nil {
			return md
		}
	}
	return nil
}

// cloudbaseConfigDrive is ConfigDriveService with config_drive_cdrom: a
// CD labelled config-2 (raw disks and vfat are not modelled).
func cloudbaseConfigDrive(conf cloudbaseConfig, run CloudbaseInitRun, l *cloudbaseLog) (*cloudbaseMetadata, error) {
	const logger = "cloudbaseinit.metadata.services.osconfigdrive.windows"
	if !conf.boolean("config_drive_cdrom", true) {
		return nil, nil
	}
	label := conf.str("drive_label", "config-2")
	for _, cd := range run.CDs {
		if !strings.EqualFold(cd.Label, label) {
			continue
		}
		meta, err := os.ReadFile(filepath.Join(cd.Dir, "openstack", "latest", "meta_data.json"))
		if err != nil {
			l.log("DEBUG", logger, "Config drive %s has no openstack/latest/meta_data.json", cd.Label)
			continue
		}
		md := &cloudbaseMetadata{name: "ConfigDriveService"}
		if err := json.Unmarshal(meta, &md.meta); err != nil {
			return nil, fmt.Errorf("openstack/latest/meta_data.json: %w", err)
		}
		if ud, err := os.ReadFile(filepath.Join(cd.Dir, "openstack", "latest", "user_data")); err == nil {
			md.userData = ud
		}
		l.log("INFO", logger, "Config Drive found on %s", cd.Label)
		return md, nil
	}
	return nil, nil
}

// cloudbaseHTTP is HttpService: the OpenStack metadata API at
// metadata_base_url, with retry_count tries retry_count_interval apart.
func cloudbaseHTTP(ctx context.Context, conf cloudbaseConfig, run CloudbaseInitRun, l *cloudbaseLog, clock Clock) (*cloudbaseMetadata, error) {
	const logger = "cloudbaseinit.metadata.services.httpservice"
	base := conf.groupOpt("openstack", "metadata_base_url", "metadata_base_url", cloudbaseDefaultMetadataURL)
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	tries := conf.integer("retry_count", 5)
	if tries < 1 {
		tries = 1
	}
	interval := time.Duration(conf.integer("retry_count_interval", 4)) * time.Second
	request := func(method, path string, body io.Reader) (int, []byte, error) {
		var lastErr error
		for i := 0; i < tries; i++ {
			if i > 0 {
				if err := sleep(ctx, clock, interval); err != nil {
					return 0, nil, err
				}
			}
			req, err := http.NewRequestWithContext(ctx, method, base+path, body)
			if err != nil {
				return 0, nil, err
			}
			resp, err := run.HTTPClient.Do(req)
			if err != nil {
				lastErr = err
				continue
			}
			b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if err != nil {
				lastErr = err
				continue
			}
			if resp.StatusCode >= 500 {
				lastErr = fmt.Errorf("HTTP Error %d", resp.StatusCode)
				continue
			}
			return resp.StatusCode, b, nil
		}
		return 0, nil, lastErr
	}
	get := func(path string) ([]byte, bool, error) {
		l.log("DEBUG", logger, "Getting metadata from: %s", base+path)
		code, b, err := request(http.MethodGet, path, nil)
		switch {
		case err != nil:
			return nil, false, err
		case code == http.StatusNotFound:
			return nil, false, nil
		case code != http.StatusOK:
			return nil, false, fmt.Errorf("HTTP Error %d", code)
		}
		return b, true, nil
	}
	meta, found, err := get("openstack/latest/meta_data.json")
	if err != nil || !found {
		l.log("DEBUG", logger, "Metadata not found at URL '%s'", base)
		return nil, nil
	}
	md := &cloudbaseMetadata{name: "HttpService"}
	if err := json.Unmarshal(meta, &md.meta); err != nil {
		return nil, fmt.Errorf("openstack/latest/meta_data.json: %w", err)
	}
	if ud, found, err := get("openstack/latest/user_data"); err == nil && found {
		md.userData = ud
	}
	passwordPath := "openstack/" + cloudbasePostPasswordVersion + "/password"
	if _, found, err := get("openstack/" + cloudbasePostPasswordVersion + "/meta_data.json"); err == nil && found {
		md.post = func(ctx context.Context, b64 string) error {
			code, _, err := request(http.MethodPost, passwordPath, strings.NewReader(b64))
			switch {
			case err != nil:
				return err
			case code == http.StatusConflict:
				return errors.New("password already set")
			case code != http.StatusOK:
				return fmt.Errorf("HTTP Error %d", code)
			}
			return nil
		}
		md.passwordSet = func(context.Context) bool {
			b, found, err := get(passwordPath)
			return err == nil && found && len(b) > 0
		}
	}
	return md, nil
}

// cloudbasePluginRun is one plugin's view of the run.
type cloudbasePluginRun struct {
	m      *Machine
	conf   cloudbaseConfig
	md     *cloudbaseMetadata
	log    *cloudbaseLog
	shared map[string]string
	res    *CloudbaseInitResult
}

func (p *cloudbasePluginRun) username() string {
	if u := p.shared["username"]; u != "" {
		return u
	}
	return p.conf.str("username", "Admin")
}

type cloudbasePlugin func(ctx context.Context, p *cloudbasePluginRun) (reboot bool, err error)

var cloudbasePlugins map[string]cloudbasePlugin

func init() {
	cloudbasePlugins = map[string]cloudbasePlugin{
		"cloudbaseinit.plugins.common.sethostname.SetHostNamePlugin":            cloudbaseSetHostName,
		"cloudbaseinit.plugins.windows.createuser.CreateUserPlugin":             cloudbaseCreateUser,
		"cloudbaseinit.plugins.common.sshpublickeys.SetUserSSHPublicKeysPlugin": cloudbaseSSHKeys,
		"cloudbaseinit.plugins.common.setuserpassword.SetUserPasswordPlugin":    cloudbaseSetPassword,
		"cloudbaseinit.plugins.common.userdata.UserDataPlugin":                  cloudbaseUserData,
	}
}

// cloudbaseSetHostName: the metadata's hostname, its first label, cut to
// 15 characters (netbios_host_name_compatibility); a changed name needs a
// reboot.
func cloudbaseSetHostName(_ context.Context, p *cloudbasePluginRun) (bool, error) {
	const logger = "cloudbaseinit.utils.hostname"
	name := p.md.str("hostname")
	if name == "" {
		p.log.log("DEBUG", "cloudbaseinit.plugins.common.sethostname", "Hostname not found in metadata")
		return false, nil
	}
	name, _, _ = strings.Cut(name, ".")
	if p.conf.boolean("netbios_host_name_compatibility", true) && len(name) > 15 {
		p.log.log("WARNING", logger, "Truncating host name for Netbios compatibility. Old name: %s, new name: %s", name, name[:15])
		name = strings.TrimRight(name[:15], "-")
	}
	if strings.EqualFold(name, p.m.ComputerName()) {
		p.log.log("DEBUG", logger, "Hostname already set to: %s", name)
		return false, nil
	}
	p.log.log("INFO", logger, "Setting hostname: %s", name)
	if err := p.m.SetComputerName(name); err != nil {
		return false, err
	}
	return true, nil
}

// cloudbaseCreateUser creates username (or sets a new random password on
// an existing one), adds it to groups and loads its profile.
func cloudbaseCreateUser(_ context.Context, p *cloudbasePluginRun) (bool, error) {
	const logger = "cloudbaseinit.plugins.common.createuser"
	user := p.username()
	password, err := randomPassword(p.conf.integer("user_password_length", 20))
	if err != nil {
		return false, err
	}
	if _, exists := p.m.userExists(user); exists {
		p.log.log("INFO", logger, "Setting password for existing user \"%s\"", user)
	} else {
		p.log.log("INFO", logger, "Creating user \"%s\" and setting password", user)
		if err := p.m.createAccount(user); err != nil {
			return false, err
		}
	}
	p.res.Passwords[user] = password
	p.shared["username"], p.shared["password"] = user, password
	if err := p.m.logon(user); err != nil {
		return false, err
	}
	groups := p.conf.list("groups", []string{"Administrators"})
	for _, g := range groups {
		p.log.log("DEBUG", logger, "Adding user \"%s\" to local group \"%s\"", user, g)
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
	return false, nil
}

// cloudbaseSSHKeys writes the metadata's public keys to
// C:\Users\<user>\.ssh\authorized_keys (text mode: CRLF line ends).
func cloudbaseSSHKeys(_ context.Context, p *cloudbasePluginRun) (bool, error) {
	const logger = "cloudbaseinit.plugins.common.sshpublickeys"
	keys := p.md.publicKeys()
	if len(keys) == 0 {
		p.log.log("DEBUG", logger, "Public keys not found in metadata")
		return false, nil
	}
	user := p.username()
	if _, ok := p.m.userExists(user); !ok {
		return false, fmt.Errorf("User profile not found for user \"%s\"", user)
	}
	dir := `C:\Users\` + user + `\.ssh`
	if err := p.m.files.MkdirAll(dir); err != nil {
		return false, err
	}
	path := dir + `\authorized_keys`
	p.log.log("INFO", logger, "Writing SSH public keys in: %s", path)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "\r\n")
	}
	return false, p.m.files.WriteFile(path, []byte(b.String()))
}

// cloudbaseSetPassword sets the user's password: admin_pass with
// inject_user_password, else the password CreateUserPlugin set; posts it
// encrypted when the service takes passwords and has not one already.
func cloudbaseSetPassword(ctx context.Context, p *cloudbasePluginRun) (bool, error) {
	const logger = "cloudbaseinit.plugins.common.setuserpassword"
	user := p.username()
	if _, ok := p.m.userExists(user); !ok {
		return false, nil
	}
	password, injected := "", false
	if p.conf.boolean("inject_user_password", true) {
		password = p.md.str("admin_pass")
	}
	if password != "" {
		injected = true
		p.log.log("WARNING", logger, "Using admin_pass metadata user password. Consider changing it as soon as possible")
	} else if password = p.shared["password"]; password == "" {
		p.log.log("DEBUG", logger, "Creating a new random password")
		var err error
		if password, err = randomPassword(p.conf.integer("user_password_length", 20)); err != nil {
			return false, err
		}
	}
	mustChange := false
	switch p.conf.str("first_logon_behaviour", "clear_text_injected_only") {
	case "always":
		mustChange = true
	case "clear_text_injected_only":
		mustChange = !injected
	case "no":
	default:
		p.m.unsupportedf("cloudbase-init first_logon_behaviour %q", p.conf.str("first_logon_behaviour", ""))
	}
	_ = p.m.updateAccount(user, func(a *LocalAccount) { a.MustChangePassword = mustChange })
	p.res.Passwords[user] = password
	p.shared["password"] = password
	p.log.log("INFO", logger, "Password succesfully updated for user %s", user)

	if p.md.post == nil {
		p.log.log("INFO", logger, "Cannot set the password in the metadata as it is not supported by this service")
		return false, nil
	}
	if p.md.passwordSet(ctx) {
		p.log.log("DEBUG", logger, "User's password already set in the instance metadata and it cannot be updated in the instance metadata")
		return false, nil
	}
	keys := p.md.publicKeys()
	if len(keys) == 0 {
		p.log.log("INFO", logger, "No SSH public key available for password encryption")
		return false, nil
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(keys[0]))
	if err != nil {
		return false, fmt.Errorf("loading the SSH public key: %w", err)
	}
	ck, ok := pub.(ssh.CryptoPublicKey)
	rsaKey, isRSA := ck.CryptoPublicKey().(*rsa.PublicKey)
	if !ok || !isRSA {
		return false, fmt.Errorf("the SSH public key is %s, not RSA", pub.Type())
	}
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, rsaKey, []byte(password))
	if err != nil {
		return false, err
	}
	p.log.log("INFO", logger, "Posting the encrypted password to the metadata service")
	if err := p.md.post(ctx, base64.StdEncoding.EncodeToString(ct)); err != nil {
		return false, err
	}
	return false, nil
}

// cloudbaseUserData runs the user data: gzip is unpacked; "#ps1" and
// "#ps1_sysnative" scripts run as C:\Windows\Temp\<uuid>.ps1 with
// powershell.exe -ExecutionPolicy RemoteSigned -NonInteractive -File.
func cloudbaseUserData(ctx context.Context, p *cloudbasePluginRun) (bool, error) {
	const logger = "cloudbaseinit.plugins.common.userdata"
	const utilsLogger = "cloudbaseinit.plugins.common.userdatautils"
	data := p.md.userData
	if len(data) == 0 {
		p.log.log("DEBUG", logger, "User data content not found")
		return false, nil
	}
	if bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		r, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return false, err
		}
		if data, err = io.ReadAll(r); err != nil {
			return false, err
		}
	}
	first, _, _ := strings.Cut(string(data), "\n")
	header := strings.ToLower(strings.TrimSpace(first))
	if header != "#ps1" && header != "#ps1_sysnative" {
		p.m.unsupportedf("cloudbase-init user data starting with %q (only #ps1 and #ps1_sysnative are modelled)", first)
		p.log.log("WARNING", utilsLogger, "Unsupported user_data format")
		return false, nil
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	script := fmt.Sprintf(`C:\Windows\Temp\%x-%x-%x-%x-%x.ps1`, id[0:4], id[4:6], id[6:8], id[8:10], id[10:])
	if err := p.m.files.WriteFile(script, data); err != nil {
		return false, err
	}
	defer p.m.files.Remove(script)
	var out, errOut bytes.Buffer
	sys := p.m.system(logonInteractive)
	code, err := sys.Processes().Run(ctx, `C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`,
		[]string{"-ExecutionPolicy", "RemoteSigned", "-NonInteractive", "-File", script}, &out, &errOut)
	if err != nil {
		return false, err
	}
	p.log.log("DEBUG", utilsLogger, "User_data stdout:\n%s", out.String())
	p.log.log("DEBUG", utilsLogger, "User_data stderr:\n%s", errOut.String())
	p.log.log("INFO", utilsLogger, "Script \"%s\" ended with exit code: %d", script, int32(code))
	return false, nil
}

// randomPassword is cloudbase-init's generate_random_password: letters,
// digits and punctuation, with each kind present.
func randomPassword(n int) (string, error) {
	if n < 8 {
		n = 8
	}
	sets := []string{"ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnopqrstuvwxyz", "23456789", "!@#$%^*()-_=+[]{}"}
	all := strings.Join(sets, "")
	pick := func(s string) (byte, error) {
		i, err := rand.Int(rand.Reader, big.NewInt(int64(len(s))))
		if err != nil {
			return 0, err
		}
		return s[i.Int64()], nil
	}
	b := make([]byte, n)
	for i := range b {
		set := all
		if i < len(sets) {
			set = sets[i]
		}
		c, err := pick(set)
		if err != nil {
			return "", err
		}
		b[i] = c
	}
	// Shuffle, so that the kinds are not in fixed places.
	for i := len(b) - 1; i > 0; i-- {
		j, err := rand.Int(rand.Reader, big.NewInt(int64(i+1)))
		if err != nil {
			return "", err
		}
		b[i], b[j.Int64()] = b[j.Int64()], b[i]
	}
	return string(b), nil
}
