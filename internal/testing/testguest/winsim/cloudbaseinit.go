package winsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
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
// Modelled metadata services: ConfigDriveService
// (cloudbaseinit_configdrive.go), HttpService (the OpenStack metadata API,
// cloudbaseinit_services.go) and MaaSHttpService (cloudbaseinit_maas.go).
// Modelled plugins (cloudbaseinit_plugins.go): SetHostNamePlugin,
// CreateUserPlugin, SetUserSSHPublicKeysPlugin, UserDataPlugin,
// SetUserPasswordPlugin (cloudbaseinit_password.go),
// ConfigWinRMListenerPlugin (cloudbaseinit_winrm.go) and
// ConfigWinRMCertificateAuthPlugin. Every option the model reads is in
// cloudbaseOptions (cloudbaseinit_config.go) with its default
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
