package winsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Cloudbase-init as its service runs at boot, modelled on cloudbase-init's
// own code (github.com/cloudbase/cloudbase-init, 1.1.x; every part names
// the file and function it follows). The simulation reads the
// configuration file the service's ImagePath names, loads the first
// configured metadata service that finds metadata, runs the configured
// plugins and logs to the serial port of logging_serial_port_settings in
// cloudbase-init's line format:
//
//	2026-11-22 08:00:00.123 1234 INFO cloudbaseinit.init [-] Executing plugin 'SetHostNamePlugin'
//
// Modelled metadata services: ConfigDriveService (cloudbaseinit_services.go),
// HttpService (the OpenStack metadata API) and MaaSHttpService
// (cloudbaseinit_maas.go). Modelled plugins (cloudbaseinit_plugins.go):
// SetHostNamePlugin, CreateUserPlugin, SetUserSSHPublicKeysPlugin,
// UserDataPlugin, SetUserPasswordPlugin, ConfigWinRMListenerPlugin
// (cloudbaseinit_winrm.go) and ConfigWinRMCertificateAuthPlugin.
// Every option the model reads is in cloudbaseOptions with its default
// from cloudbaseinit/conf/*.py. A service, plugin, option or option value
// the model does not cover is reported through unsupportedf (and
// Options.Failf), never answered with a plausible default.

const (
	cloudbaseStateKey = `HKLM\SOFTWARE\Cloudbase Solutions\Cloudbase-Init`
	// Plugin states: plugins/common/base.py PLUGIN_EXECUTION_DONE and
	// PLUGIN_EXECUTE_ON_NEXT_BOOT.
	pluginExecutionDone       = 1
	pluginExecuteOnNextBoot   = 2
	cloudbaseDefaultServices  = "cloudbaseinit.metadata.services.httpservice.HttpService,cloudbaseinit.metadata.services.configdrive.ConfigDriveService,cloudbaseinit.metadata.services.ec2service.EC2Service,cloudbaseinit.metadata.services.maasservice.MaaSHttpService,cloudbaseinit.metadata.services.cloudstack.CloudStack,cloudbaseinit.metadata.services.opennebulaservice.OpenNebulaService"
	cloudbaseDefaultPluginSet = "cloudbaseinit.plugins.common.mtu.MTUPlugin,cloudbaseinit.plugins.windows.ntpclient.NTPClientPlugin,cloudbaseinit.plugins.common.sethostname.SetHostNamePlugin,cloudbaseinit.plugins.windows.createuser.CreateUserPlugin,cloudbaseinit.plugins.common.networkconfig.NetworkConfigPlugin,cloudbaseinit.plugins.windows.licensing.WindowsLicensingPlugin,cloudbaseinit.plugins.common.sshpublickeys.SetUserSSHPublicKeysPlugin,cloudbaseinit.plugins.windows.extendvolumes.ExtendVolumesPlugin,cloudbaseinit.plugins.common.userdata.UserDataPlugin,cloudbaseinit.plugins.common.setuserpassword.SetUserPasswordPlugin,cloudbaseinit.plugins.windows.winrmlistener.ConfigWinRMListenerPlugin,cloudbaseinit.plugins.windows.winrmcertificateauth.ConfigWinRMCertificateAuthPlugin,cloudbaseinit.plugins.common.localscripts.LocalScriptsPlugin"
)

// first_logon_behaviour values (cloudbaseinit/constant.py
// LOGON_PASSWORD_CHANGE_OPTIONS).
const (
	cloudbaseClearTextInjectedOnly = "clear_text_injected_only"
	cloudbaseAlwaysChange          = "always"
	cloudbaseNeverChange           = "no"
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
	// CDs are the CD-ROM volumes attached to the machine, in drive letter
	// order (D:, E:, ...).
	CDs []Volume
	// Disks names the physical disks attached besides the system disk.
	// What they hold is not modelled: a configuration that has
	// ConfigDriveService search disks (config drive locations hdd and
	// partition) while there are any is reported. The system disk holds
	// no config drive (no ISO 9660 image, no vfat volume labelled
	// config-2).
	Disks []string
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
	// Passwords maps the accounts whose password the run set to it (the
	// last one set, when two plugins set one).
	Passwords map[string]string
	// Reboot: a plugin asked for a reboot and allow_reboot is true; the
	// remaining plugins run at the next boot.
	Reboot bool
}

// --- configuration ------------------------------------------------------------

type cloudbaseOptKind int

const (
	optStr cloudbaseOptKind = iota
	optBool
	optInt
	optFloat
	optList
)

// cloudbaseOpt is an option cloudbase-init registers: its type, its
// default as the file would spell it, the [DEFAULT] name it had before it
// moved to its group (oslo.config's deprecated_name/deprecated_group) and
// its choices.
type cloudbaseOpt struct {
	kind       cloudbaseOptKind
	def        string
	deprecated string
	choices    []string
	// onlyDefault: the model covers the default value alone; another
	// changes behaviour the stand-in does not model and is reported.
	onlyDefault bool
}

// cloudbaseOptions are the options the model knows, by "group.name"
// ("name" for [DEFAULT]). Defaults: cloudbaseinit/conf/default.py
// GlobalOptions, conf/cloudconfig.py (group config_drive),
// conf/openstack.py, conf/maas.py; the log options are oslo.log's.
// Options whose effect the stand-in does not observe (log files, the
// tools ConfigDriveService extracts disks with, options of plugins that
// are not modelled) are accepted without effect.
var cloudbaseOptions = map[string]cloudbaseOpt{
	"allow_reboot":                    {kind: optBool, def: "true"},
	"stop_service_on_exit":            {kind: optBool, def: "true"},
	"check_latest_version":            {kind: optBool, def: "false"}, // a request to cloudbase.it; logs only when a newer version exists
	"retry_count":                     {kind: optInt, def: "5"},
	"retry_count_interval":            {kind: optFloat, def: "4"},
	"mtools_path":                     {kind: optStr},
	"bsdtar_path":                     {kind: optStr, def: "bsdtar.exe"},
	"netbios_host_name_compatibility": {kind: optBool, def: "true"},
	"logging_serial_port_settings":    {kind: optStr},
	"mtu_use_dhcp_config":             {kind: optBool, def: "true"},  // MTUPlugin
	"ntp_use_dhcp_config":             {kind: optBool, def: "false"}, // NTPClientPlugin
	"local_scripts_path":              {kind: optStr},                // LocalScriptsPlugin
	"username":                        {kind: optStr, def: "Admin"},
	"groups":                          {kind: optList, def: "Administrators"},
	"rename_admin_user":               {kind: optBool, def: "false", onlyDefault: true},
	"inject_user_password":            {kind: optBool, def: "true"},
	"first_logon_behaviour": {kind: optStr, def: cloudbaseClearTextInjectedOnly,
		choices: []string{cloudbaseClearTextInjectedOnly, cloudbaseNeverChange, cloudbaseAlwaysChange}},
	"metadata_services":    {kind: optList, def: cloudbaseDefaultServices},
	"plugins":              {kind: optList, def: cloudbaseDefaultPluginSet},
	"user_password_length": {kind: optInt, def: "20"},
	// ConfigWinRMListenerPlugin (conf/default.py).
	"winrm_enable_basic_auth":        {kind: optBool, def: "true"},
	"winrm_configure_http_listener":  {kind: optBool, def: "false"},
	"winrm_configure_https_listener": {kind: optBool, def: "true"},
	// oslo.log: debug adds the DEBUG lines; verbose, log_dir (logdir),
	// log_file (logfile) and default_log_levels change nothing on COM1.
	"debug":              {kind: optBool, def: "false"},
	"verbose":            {kind: optBool, def: "true"},
	"logdir":             {kind: optStr},
	"logfile":            {kind: optStr},
	"default_log_levels": {kind: optList},

	"config_drive.raw_hdd":   {kind: optBool, def: "true", deprecated: "config_drive_raw_hhd"},
	"config_drive.cdrom":     {kind: optBool, def: "true", deprecated: "config_drive_cdrom"},
	"config_drive.vfat":      {kind: optBool, def: "true", deprecated: "config_drive_vfat"},
	"config_drive.types":     {kind: optList, def: "vfat,iso", deprecated: "config_drive_types"},
	"config_drive.locations": {kind: optList, def: "cdrom,hdd,partition", deprecated: "config_drive_locations"},

	"openstack.metadata_base_url":             {kind: optStr, def: "http://169.254.169.254/", deprecated: "metadata_base_url"},
	"openstack.add_metadata_private_ip_route": {kind: optBool, def: "true", deprecated: "add_metadata_private_ip_route"}, // a route to 169.254.169.254; the stand-in's network needs none
	"openstack.https_allow_insecure":          {kind: optBool, def: "false", onlyDefault: true},
	"openstack.https_ca_bundle":               {kind: optStr, onlyDefault: true},

	"maas.metadata_base_url":     {kind: optStr, deprecated: "maas_metadata_url"},
	"maas.oauth_consumer_key":    {kind: optStr, deprecated: "maas_oauth_consumer_key"},
	"maas.oauth_consumer_secret": {kind: optStr, deprecated: "maas_oauth_consumer_secret"},
	"maas.oauth_token_key":       {kind: optStr, deprecated: "maas_oauth_token_key"},
	"maas.oauth_token_secret":    {kind: optStr, deprecated: "maas_oauth_token_secret"},
	"maas.https_allow_insecure":  {kind: optBool, def: "false", onlyDefault: true},
	"maas.https_ca_bundle":       {kind: optStr, onlyDefault: true},
}

// cloudbaseConfig is cloudbase-init.conf as oslo.config reads it: values
// by "group.name" ("name" for [DEFAULT]).
type cloudbaseConfig struct {
	path string
	set  map[string]string
}

// parseCloudbaseConfig reads the file as oslo_config/iniparser.py
// BaseParser does: "#" and ";" comments, [section] headers, the key ends
// at the first "=" or ":", the value is stripped and loses one pair of
// matching quotes (_split_key_value); a later line of the same option wins.
// Continuation lines (indented) are not modelled.
func parseCloudbaseConfig(path string, data []byte) (cloudbaseConfig, error) {
	c := cloudbaseConfig{path: path, set: map[string]string{}}
	section := ""
	for i, raw := range strings.Split(strings.TrimPrefix(string(data), "\ufeff"), "\n") {
		raw = strings.TrimRight(raw, "\r \t")
		line := strings.TrimSpace(raw)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
			continue
		case raw[0] == ' ' || raw[0] == '\t':
			return c, fmt.Errorf("%s line %d: continuation lines are not modelled: %q", path, i+1, raw)
		case strings.HasPrefix(line, "["):
			if !strings.HasSuffix(line, "]") || len(line) <= 2 {
				return c, fmt.Errorf("%s line %d: %q is not a section header", path, i+1, line)
			}
			section = line[1 : len(line)-1]
			continue
		}
		if section == "" {
			return c, fmt.Errorf("%s line %d: %q comes before any section", path, i+1, line)
		}
		sep := strings.IndexAny(line, "=:")
		if sep < 0 {
			return c, fmt.Errorf("%s line %d: %q is not an option", path, i+1, line)
		}
		k, v := strings.TrimSpace(line[:sep]), strings.TrimSpace(line[sep+1:])
		if len(v) >= 2 && v[0] == v[len(v)-1] && (v[0] == '"' || v[0] == '\'') {
			v = v[1 : len(v)-1]
		}
		if section != "DEFAULT" {
			k = section + "." + k
		}
		c.set[k] = v
	}
	return c, nil
}

// value is the option's value as oslo.config resolves it: the option in
// its group, else its deprecated [DEFAULT] name, else its default.
func (c cloudbaseConfig) value(name string) (string, cloudbaseOpt) {
	o, ok := cloudbaseOptions[name]
	if !ok {
		panic("cloudbase-init option " + name + " is not in cloudbaseOptions")
	}
	if v, ok := c.set[name]; ok {
		return v, o
	}
	if o.deprecated != "" {
		if v, ok := c.set[o.deprecated]; ok {
			return v, o
		}
	}
	return o.def, o
}

// validate checks every option the file sets as oslo.config would when
// cloudbase-init reads it (a bad value stops the service) and reports
// the options and values the model does not cover.
func (c cloudbaseConfig) validate(m *Machine) error {
	known := map[string]string{}
	for name, o := range cloudbaseOptions {
		known[name] = name
		if o.deprecated != "" {
			known[o.deprecated] = name
		}
	}
	var bad []string
	for key := range c.set {
		name, ok := known[key]
		if !ok {
			m.unsupportedf("cloudbase-init option %q in %s is not modelled", key, c.path)
			continue
		}
		v, o := c.value(name)
		if err := o.check(v); err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", key, err))
			continue
		}
		if o.onlyDefault && v != o.def && !(o.kind == optBool && parseOsloBool(v) == parseOsloBool(o.def)) {
			m.unsupportedf("cloudbase-init option %s = %q is not modelled (only its default %q is)", key, v, o.def)
		}
	}
	if len(bad) > 0 {
		sortFold(bad)
		return fmt.Errorf("%s: %s", c.path, strings.Join(bad, "; "))
	}
	return nil
}

// check is the option type's conversion (oslo_config/types.py).
func (o cloudbaseOpt) check(v string) error {
	switch o.kind {
	case optBool:
		if parseOsloBool(v) < 0 {
			return fmt.Errorf("%q is not a boolean (true/false, 1/0, on/off, yes/no)", v)
		}
	case optInt:
		if _, err := strconv.Atoi(v); err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
	case optFloat:
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return fmt.Errorf("%q is not a number", v)
		}
	}
	if len(o.choices) > 0 {
		for _, ch := range o.choices {
			if v == ch {
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %s", v, strings.Join(o.choices, ", "))
	}
	return nil
}

// parseOsloBool is oslo_utils.strutils.bool_from_string(strict=True): 1
// for true, 0 for false, -1 for anything else.
func parseOsloBool(v string) int {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "t", "true", "on", "y", "yes":
		return 1
	case "0", "f", "false", "off", "n", "no":
		return 0
	}
	return -1
}

func (c cloudbaseConfig) str(name string) string {
	v, _ := c.value(name)
	return v
}

func (c cloudbaseConfig) boolean(name string) bool {
	v, _ := c.value(name)
	return parseOsloBool(v) == 1
}

func (c cloudbaseConfig) integer(name string) int {
	v, _ := c.value(name)
	n, _ := strconv.Atoi(v)
	return n
}

func (c cloudbaseConfig) seconds(name string) time.Duration {
	v, _ := c.value(name)
	f, _ := strconv.ParseFloat(v, 64)
	return time.Duration(f * float64(time.Second))
}

// list is oslo.config's ListOpt: comma-separated, stripped, empty items
// dropped.
func (c cloudbaseConfig) list(name string) []string {
	v, _ := c.value(name)
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// --- logging ------------------------------------------------------------------

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

// --- the service ----------------------------------------------------------------

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

// RunCloudbaseInit runs the cloudbase-init service once, as a boot starts
// it: init.py InitManager.configure_host. It returns an error only when
// cloudbase-init is not installed or its configuration cannot be read
// (the service would not start or would stop at once).
func (m *Machine) RunCloudbaseInit(ctx context.Context, run CloudbaseInitRun) (CloudbaseInitResult, error) {
	res := CloudbaseInitResult{Passwords: map[string]string{}}
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
		m.unsupportedf("cloudbase-init configuration: %v", err)
		return res, err
	}
	if err := conf.validate(m); err != nil {
		m.unsupportedf("cloudbase-init configuration: %v", err)
		return res, err
	}
	l := &cloudbaseLog{pid: run.PID, debug: conf.boolean("debug"), clock: m.clock}
	if l.pid == 0 {
		m.mu.Lock()
		l.pid = 1000 + 4*len(m.st.Boots)
		m.mu.Unlock()
	}
	if settings := conf.str("logging_serial_port_settings"); settings != "" {
		if port, _, _ := strings.Cut(settings, ","); strings.EqualFold(port, "COM1") {
			l.w = run.Console
		} else {
			m.unsupportedf("cloudbase-init logging_serial_port_settings %q: only COM1 is modelled", settings)
		}
	}
	if run.HTTPClient == nil {
		run.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	const initLogger = "cloudbaseinit.init"
	l.log("INFO", initLogger, "Cloudbase-Init version: 1.1.6")

	svc := m.cloudbaseFindMetadata(ctx, conf, run, l)
	allowReboot := conf.boolean("allow_reboot")
	if svc == nil {
		l.log("ERROR", initLogger, "No metadata service found")
	} else {
		res.Service = svc.name()
		l.log("INFO", initLogger, "Metadata service loaded: '%s'", svc.name())
		id, hasID, err := svc.instanceID(ctx)
		if err != nil {
			// configure_host does not catch it: the service stops.
			l.log("ERROR", initLogger, "%s", err)
			m.unsupportedf("cloudbase-init: the instance id cannot be read (%v); the service would stop with a traceback", err)
			return res, nil
		}
		res.InstanceID = id
		if hasID {
			l.log("DEBUG", initLogger, "Instance id: %s", id)
		} else {
			l.log("DEBUG", initLogger, "Instance id: None")
		}
		reboot, err := m.cloudbasePluginsStage(ctx, conf, svc, hasID, id, l, &res)
		if err != nil {
			return res, err
		}
		res.Reboot = reboot && allowReboot
	}
	if res.Reboot {
		l.log("INFO", initLogger, "Rebooting")
		return res, nil
	}
	l.log("INFO", initLogger, "Plugins execution done")
	if conf.boolean("stop_service_on_exit") {
		l.log("INFO", initLogger, "Stopping Cloudbase-Init service")
	}
	return res, nil
}

// cloudbasePluginsStage is init.py _handle_plugins_stage and _exec_plugin
// for the MAIN stage: a plugin recorded as done for the instance
// (HKLM\SOFTWARE\Cloudbase Solutions\Cloudbase-Init\<instance id>\Plugins\<name>
// is 1) is skipped; without an instance id (None) no state is read or
// written; a plugin that raises is logged and runs again at the next boot;
// a reboot request ends the stage when allow_reboot is true.
func (m *Machine) cloudbasePluginsStage(ctx context.Context, conf cloudbaseConfig, svc cloudbaseService, hasID bool, id string, l *cloudbaseLog, res *CloudbaseInitResult) (bool, error) {
	const initLogger = "cloudbaseinit.init"
	reg := m.RegistryFor(m.opts.Users[0])
	section := cloudbaseStateKey + `\Plugins`
	if id != "" {
		section = cloudbaseStateKey + `\` + id + `\Plugins`
	}
	l.log("INFO", initLogger, "Executing plugins for stage 'MAIN':")
	shared := &cloudbaseShared{}
	reboot := false
	for _, class := range conf.list("plugins") {
		if renamed, ok := cloudbaseOldPlugins[class]; ok {
			l.log("WARNING", "cloudbaseinit.plugins.factory", "Old plugin module '%s' was found. The new name is '%s'. The old name will not be supported starting with cloudbaseinit 1.0", class, renamed)
			class = renamed
		}
		name := class[strings.LastIndexByte(class, '.')+1:]
		plugin := cloudbasePlugins[class]
		if plugin == nil {
			// Its stage (PRE_NETWORKING, PRE_METADATA_DISCOVERY or MAIN)
			// and what it does are not modelled.
			m.unsupportedf("cloudbase-init plugin %s is not modelled", class)
			l.log("ERROR", initLogger, "plugin '%s' failed with error 'not modelled by the stand-in'", name)
			continue
		}
		if hasID {
			if st, _, _ := reg.DWORD(section, name); st == pluginExecutionDone {
				l.log("DEBUG", initLogger, "Plugin '%s' execution already done, skipping", name)
				continue
			}
		}
		l.log("INFO", initLogger, "Executing plugin '%s'", name)
		status, rebootRequired, err := plugin(ctx, &cloudbasePluginRun{m: m, conf: conf, svc: svc, log: l, shared: shared, res: res})
		if err != nil {
			l.log("ERROR", initLogger, "plugin '%s' failed with error '%s'", name, err)
			continue
		}
		if hasID {
			if err := reg.SetDWORD(section, name, uint32(status)); err != nil {
				return false, err
			}
		}
		reboot = rebootRequired
		if reboot && conf.boolean("allow_reboot") {
			break
		}
	}
	return reboot, nil
}

// cloudbaseOldPlugins are plugins/factory.py OLD_PLUGINS: names config
// files still use for plugins that moved to plugins.common.
var cloudbaseOldPlugins = map[string]string{
	"cloudbaseinit.plugins.windows.sethostname.SetHostNamePlugin":            "cloudbaseinit.plugins.common.sethostname.SetHostNamePlugin",
	"cloudbaseinit.plugins.windows.sshpublickeys.SetUserSSHPublicKeysPlugin": "cloudbaseinit.plugins.common.sshpublickeys.SetUserSSHPublicKeysPlugin",
	"cloudbaseinit.plugins.windows.userdata.UserDataPlugin":                  "cloudbaseinit.plugins.common.userdata.UserDataPlugin",
	"cloudbaseinit.plugins.windows.setuserpassword.SetUserPasswordPlugin":    "cloudbaseinit.plugins.common.setuserpassword.SetUserPasswordPlugin",
}

// cloudbaseFindMetadata is metadata/factory.py get_metadata_service: the
// first configured service whose load() returns True; one that raises is
// logged and the next is tried.
func (m *Machine) cloudbaseFindMetadata(ctx context.Context, conf cloudbaseConfig, run CloudbaseInitRun, l *cloudbaseLog) cloudbaseService {
	const factoryLogger = "cloudbaseinit.metadata.factory"
	for _, class := range conf.list("metadata_services") {
		var svc cloudbaseService
		var err error
		switch class {
		case "cloudbaseinit.metadata.services.configdrive.ConfigDriveService":
			svc, err = m.cloudbaseConfigDrive(conf, run, l)
		case "cloudbaseinit.metadata.services.httpservice.HttpService":
			svc, err = m.cloudbaseHTTPService(ctx, conf, run, l)
		case "cloudbaseinit.metadata.services.maasservice.MaaSHttpService":
			svc, err = m.cloudbaseMAAS(ctx, conf, run, l)
		default:
			m.unsupportedf("cloudbase-init metadata service %s is not modelled", class)
			err = errors.New("not modelled by the stand-in")
		}
		if err != nil {
			l.log("ERROR", factoryLogger, "Failed to load metadata service '%s'", class)
			l.log("ERROR", factoryLogger, "%s", err)
			continue
		}
		if svc != nil {
			return svc
		}
	}
	return nil
}
