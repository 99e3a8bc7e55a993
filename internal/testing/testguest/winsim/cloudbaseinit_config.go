package winsim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

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
