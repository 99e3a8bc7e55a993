package winsim

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// What winbake-sysprep asks of Windows before sysprep, beyond the shells:
// per-user Appx packages (Get-AppxPackage, Remove-AppxPackage, and
// sysprep's refusal while one is installed for a user but not provisioned),
// msiexec installing the cloudbase-init MSI, Optimize-Volume -ReTrim,
// Get-ItemProperty on the registry, Start-Process -Wait -PassThru, and
// property access on the objects these cmdlets return.
//
// Appx packages live in the registry where Windows keeps them:
// AppxAllUserStore\<user>\<PackageFullName> for a package installed for a
// user, AppxAllUserStore\Applications\<PackageFullName> for a provisioned
// one. (Windows names the user by SID; the stand-in's users have none, so
// the key is the user name.)

const (
	appxStoreKey        = `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Appx\AppxAllUserStore`
	appxProvisionedName = "Applications"
)

// Cloudbase-init as its MSI installs it.
const (
	CloudbaseInitDir     = `C:\Program Files\Cloudbase Solutions\Cloudbase-Init`
	cloudbaseServiceKey  = `HKLM\SYSTEM\CurrentControlSet\Services\cloudbase-init`
	cloudbaseUninstall   = `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall\{ED85F19F-057A-4EE6-BC8D-F576DEACE78D}`
	cloudbaseMSIPrefix   = "cloudbaseinitsetup"
	msiexecPath          = `C:\Windows\System32\msiexec.exe`
	errInstallOpenFailed = 1619 // ERROR_INSTALL_PACKAGE_OPEN_FAILED
	errInstallInvalid    = 1620 // ERROR_INSTALL_PACKAGE_INVALID
	errInvalidCommand    = 1639 // ERROR_INVALID_COMMAND_LINE
)

// msiexec.exe is a program of every installation.
var _ = func() bool { builtinPrograms = append(builtinPrograms, msiexecPath); return true }()

// AppxPackage is an Appx package installed for a user or provisioned for
// all users.
type AppxPackage struct {
	FullName string // e.g. Microsoft.OneDriveSync_21196.921.7.0_neutral__8wekyb3d8bbwe
	// User is the user it is installed for; "" for a provisioned package.
	User string
}

// Name is the package name, the full name up to its first underscore.
func (a AppxPackage) Name() string { name, _, _ := strings.Cut(a.FullName, "_"); return name }

// InstallAppx installs the package with the full name for user, or
// provisions it for all users when user is "".
func (m *Machine) InstallAppx(user, fullName string) error {
	if user == "" {
		user = appxProvisionedName
	}
	return m.RegistryFor(m.opts.Users[0]).CreateKey(appxStoreKey + `\` + user + `\` + fullName)
}

// AppxPackages lists the installed and provisioned Appx packages.
func (m *Machine) AppxPackages() []AppxPackage {
	reg := m.RegistryFor(m.opts.Users[0])
	users, _ := reg.SubKeys(appxStoreKey)
	var out []AppxPackage
	for _, u := range users {
		names, _ := reg.SubKeys(appxStoreKey + `\` + u)
		for _, n := range names {
			p := AppxPackage{FullName: n, User: u}
			if strings.EqualFold(u, appxProvisionedName) {
				p.User = ""
			}
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].User+"\x00"+out[i].FullName < out[j].User+"\x00"+out[j].FullName })
	return out
}

// appxSysprepBlocker returns the first package installed for a user but
// not provisioned (sysprep's Appx provider names one per run), or "".
func (m *Machine) appxSysprepBlocker() string {
	pkgs := m.AppxPackages()
	provisioned := map[string]bool{}
	for _, p := range pkgs {
		if p.User == "" {
			provisioned[strings.ToLower(p.FullName)] = true
		}
	}
	for _, p := range pkgs {
		if p.User != "" && !provisioned[strings.ToLower(p.FullName)] {
			return p.FullName
		}
	}
	return ""
}

// psObject is an object with properties, as the cmdlets here return;
// property names are lower case.
type psObject interface {
	psProperty(name string) (any, bool)
}

// psObjectMember reads a property of a psObject, or of each psObject of an
// array (PowerShell's member enumeration). ok is false for other values.
func psObjectMember(t any, name string, call bool) (any, bool) {
	if call {
		return nil, false
	}
	switch v := t.(type) {
	case psObject:
		if name == "count" || name == "length" {
			return int64(1), true // every scalar has Count 1 in PowerShell 3+
		}
		return v.psProperty(name)
	case []any:
		if len(v) == 0 || name == "count" || name == "length" {
			return nil, false
		}
		var out []any
		for _, x := range v {
			o, isObj := x.(psObject)
			if !isObj {
				return nil, false
			}
			if p, found := o.psProperty(name); found {
				out = append(out, p)
			}
		}
		if len(out) == 1 {
			return out[0], true
		}
		return out, true
	}
	return nil, false
}

type appxObject struct{ AppxPackage }

func (a *appxObject) psProperty(name string) (any, bool) {
	switch name {
	case "name":
		return a.Name(), true
	case "packagefullname":
		return a.FullName, true
	}
	return nil, false
}

func (a *appxObject) String() string { return a.FullName }

type processObject struct{ exitCode int64 }

func (p *processObject) psProperty(name string) (any, bool) {
	if name == "exitcode" {
		return p.exitCode, true
	}
	return nil, false
}

type regPropertyObject struct {
	name  string
	value any
}

func (r *regPropertyObject) psProperty(name string) (any, bool) {
	if strings.EqualFold(name, r.name) {
		return r.value, true
	}
	return nil, false
}

// sysprepCmdlets are added to psCmdlets.
var sysprepCmdlets = map[string]*psCmdlet{
	"get-appxpackage":    getAppxPackage,
	"remove-appxpackage": removeAppxPackage,
	"optimize-volume":    optimizeVolume,
	"get-itemproperty":   getItemProperty,
	"gp":                 getItemProperty,
	"start-process":      startProcess,
	"saps":               startProcess,
	"start":              startProcess,
	"get-command":        getCommand,
	"gcm":                getCommand,
}

type commandObject struct{ name, source string }

func (c *commandObject) psProperty(name string) (any, bool) {
	switch name {
	case "name":
		return c.name, true
	case "source", "path":
		return c.source, true
	}
	return nil, false
}

func (c *commandObject) String() string { return c.name }

// Get-Command -Name <name> finds a modelled cmdlet or a program on PATH.
var getCommand = &psCmdlet{
	params: []psParam{{name: "name", position: 0}},
	run: func(c *psCall) ([]any, error) {
		name := c.str("name")
		if cmdlet := psCmdlets[strings.ToLower(name)]; cmdlet != nil {
			return []any{&commandObject{name: name}}, nil
		}
		pp := *c.rt.p
		pp.files = c.rt.files()
		if abs := pp.findProgram(name, searchPath); abs != "" {
			return []any{&commandObject{name: name, source: abs}}, nil
		}
		return nil, c.nonTerminating(&psErrorRecord{
			message:  fmt.Sprintf("The term '%s' is not recognized as the name of a cmdlet, function, script file, or operable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again.", name),
			category: "ObjectNotFound", target: name, exception: "CommandNotFoundException", fqid: "CommandNotFoundException,Microsoft.PowerShell.Commands.GetCommandCommand",
		})
	},
}

var getAppxPackage = &psCmdlet{
	params: []psParam{
		{name: "name", position: 0},
		{name: "allusers", isSwitch: true, position: -1},
		{name: "user", position: -1},
	},
	module: true,
	run: func(c *psCall) ([]any, error) {
		if c.has("user") {
			return nil, &psUnsupported{msg: "Get-AppxPackage -User", at: c.e.at}
		}
		pattern := "*"
		if c.has("name") {
			pattern = c.str("name")
		}
		var out []any
		seen := map[string]bool{}
		for _, p := range c.rt.m.AppxPackages() {
			if p.User == "" || !c.flag("allusers") && !strings.EqualFold(p.User, c.rt.p.user) {
				continue
			}
			if ok, _ := likeMatch(pattern, p.Name()); !ok || seen[strings.ToLower(p.FullName)] {
				continue
			}
			seen[strings.ToLower(p.FullName)] = true
			out = append(out, &appxObject{p})
		}
		return out, nil
	},
}

var removeAppxPackage = &psCmdlet{
	params: []psParam{
		{name: "package", position: 0},
		{name: "allusers", isSwitch: true, position: -1},
		{name: "user", position: -1},
		{name: "preserveapplicationdata", isSwitch: true, position: -1},
	},
	module: true,
	run: func(c *psCall) ([]any, error) {
		if c.has("user") || c.has("preserveapplicationdata") {
			return nil, &psUnsupported{msg: "Remove-AppxPackage -User/-PreserveApplicationData", at: c.e.at}
		}
		full := c.str("package")
		m := c.rt.m
		reg := m.RegistryFor(m.opts.Users[0])
		removed := false
		for _, p := range m.AppxPackages() {
			if p.User == "" || !strings.EqualFold(p.FullName, full) || !c.flag("allusers") && !strings.EqualFold(p.User, c.rt.p.user) {
				continue
			}
			if err := reg.DeleteKey(appxStoreKey + `\` + p.User + `\` + p.FullName); err != nil {
				return nil, &psUnsupported{msg: fmt.Sprintf("Remove-AppxPackage: %v", err), at: c.e.at}
			}
			removed = true
		}
		if !removed {
			return nil, c.nonTerminating(&psErrorRecord{
				message:  fmt.Sprintf("Deployment failed with HRESULT: 0x80073CF1, Package was not found.\r\nWindows cannot remove %s because the current user does not have that package installed.", full),
				category: "ObjectNotFound", target: full, exception: "IOException", fqid: "RemoveAppxPackageCommand,Microsoft.Windows.Appx.PackageManager.Commands.RemoveAppxPackageCommand",
			})
		}
		return nil, nil
	},
}

var optimizeVolume = &psCmdlet{
	params: []psParam{
		{name: "driveletter", position: 0},
		{name: "retrim", isSwitch: true, position: -1},
	},
	module: true,
	run: func(c *psCall) ([]any, error) {
		if !c.flag("retrim") {
			return nil, &psUnsupported{msg: "Optimize-Volume without -ReTrim", at: c.e.at}
		}
		drive := driveLetter(c.str("driveletter"))
		if ok, dir := c.rt.files().exists(drive + `:\`); len(drive) != 1 || !ok || !dir {
			return nil, c.nonTerminating(&psErrorRecord{
				message:  fmt.Sprintf("No MSFT_Volume objects found with property 'DriveLetter' equal to '%s'.  Verify the value of the property and retry.", drive),
				category: "ObjectNotFound", target: drive, exception: "CimJobException", fqid: "CmdletizationQuery_NotFound_DriveLetter,Optimize-Volume",
			})
		}
		return optimizeVolumeReTrim(c, drive)
	},
}

var getItemProperty = &psCmdlet{
	params: []psParam{{name: "path", position: 0}, {name: "name", position: 1}, {name: "literalpath", position: -1}},
	run: func(c *psCall) ([]any, error) {
		p, _ := c.path()
		drive, rest := psDrive(p)
		key := rest
		switch drive {
		case "hklm", "hkcu":
			key = drive + `:\` + rest
		case "provider:registry":
		default:
			return nil, &psUnsupported{msg: fmt.Sprintf("Get-ItemProperty on %q (registry paths only)", p), at: c.e.at}
		}
		if !c.has("name") {
			return nil, &psUnsupported{msg: "Get-ItemProperty without -Name", at: c.e.at}
		}
		name := c.str("name")
		reg := c.rt.m.RegistryFor(c.rt.p.user)
		if ok, _ := reg.KeyExists(key); !ok {
			return nil, c.pathNotFound(p, "GetItemPropertyCommand")
		}
		v, ok, err := reg.Value(key, name)
		if err != nil {
			return nil, &psUnsupported{msg: fmt.Sprintf("Get-ItemProperty %q: %v", p, err), at: c.e.at}
		}
		if !ok {
			return nil, c.nonTerminating(&psErrorRecord{
				message:  fmt.Sprintf("Property %s does not exist at path %s.", name, strings.TrimPrefix(key, "hklm:")),
				category: "InvalidArgument", target: name, exception: "PSArgumentException", fqid: "System.Management.Automation.PSArgumentException,Microsoft.PowerShell.Commands.GetItemPropertyCommand",
			})
		}
		var value any
		switch v.Type {
		case RegSZ, RegExpandSZ:
			value = v.String
		case RegDWORD, RegQWORD:
			value = int64(v.Number)
		default:
			return nil, &psUnsupported{msg: fmt.Sprintf("Get-ItemProperty of a %s value", v.Type), at: c.e.at}
		}
		return []any{&regPropertyObject{name: v.Name, value: value}}, nil
	},
}

// Start-Process runs a program in its own window: its output is not the
// script's. Only -Wait is modelled.
var startProcess = &psCmdlet{
	params: []psParam{
		{name: "filepath", position: 0},
		{name: "argumentlist", aliases: []string{"args"}, position: 1},
		{name: "wait", isSwitch: true, position: -1},
		{name: "passthru", isSwitch: true, position: -1},
		{name: "nonewwindow", isSwitch: true, position: -1},
	},
	run: func(c *psCall) ([]any, error) {
		if !c.flag("wait") {
			return nil, &psUnsupported{msg: "Start-Process without -Wait", at: c.e.at}
		}
		name := c.str("filepath")
		pp := *c.rt.p
		pp.files = c.rt.files()
		abs := pp.findProgram(name, searchPath)
		if abs == "" || c.rt.m.programAt(abs) == nil {
			return nil, c.nonTerminating(&psErrorRecord{
				message:  "This command cannot be run due to the error: The system cannot find the file specified.",
				category: "InvalidOperation", target: ":", exception: "InvalidOperationException", fqid: "InvalidOperationException,Microsoft.PowerShell.Commands.StartProcessCommand",
			})
		}
		var parts []string
		for _, a := range flatten([]any{c.named["argumentlist"]}) {
			parts = append(parts, toString(a))
		}
		child := c.rt.p.child(io.Discard, io.Discard)
		child.files = c.rt.files()
		code, _ := child.exec(abs, strings.Join(parts, " "))
		if c.flag("passthru") {
			return []any{&processObject{exitCode: int64(int32(code))}}, nil
		}
		return nil, nil
	},
}

// likeMatch is -like's wildcard match (* and ?), case-insensitive.
func likeMatch(pattern, s string) (bool, error) {
	p, t := []rune(strings.ToLower(pattern)), []rune(strings.ToLower(s))
	var match func(i, j int) bool
	match = func(i, j int) bool {
		for i < len(p) {
			switch p[i] {
			case '*':
				for k := j; k <= len(t); k++ {
					if match(i+1, k) {
						return true
					}
				}
				return false
			case '?':
				if j >= len(t) {
					return false
				}
			default:
				if j >= len(t) || p[i] != t[j] {
					return false
				}
			}
			i++
			j++
		}
		return j == len(t)
	}
	return match(0, 0), nil
}

// runMsiexec is msiexec.exe /i <package> with /qn (or /quiet), optional
// /norestart, /l*v <log> and PROPERTY=value pairs. It installs the
// cloudbase-init MSI (CloudbaseInitSetup*.msi) and virtio-win's QEMU guest
// agent (qemu-ga-x86_64.msi, without properties); other packages are not
// modelled.
func (m *Machine) runMsiexec(p *proc) uint32 {
	var pkg, logPath string
	quiet := false
	props := map[string]string{}
	for i := 0; i < len(p.args); i++ {
		a := p.args[i]
		la := strings.ToLower(a)
		switch {
		case la == "/i" && i+1 < len(p.args):
			i++
			pkg = p.args[i]
		case la == "/qn" || la == "/quiet":
			quiet = true
		case la == "/norestart":
		case strings.HasPrefix(la, "/l") && i+1 < len(p.args):
			i++
			logPath = p.args[i]
		case strings.Contains(a, "=") && !strings.HasPrefix(a, "/"):
			k, v, _ := strings.Cut(a, "=")
			props[strings.ToUpper(k)] = strings.Trim(v, `"`)
		default:
			m.unsupportedf("msiexec.exe argument not understood: %q", p.args)
			return errInvalidCommand
		}
	}
	if pkg == "" || !quiet {
		m.unsupportedf("msiexec.exe without /i <package> and /qn: %q", p.args)
		return errInvalidCommand
	}
	logLine := func(s string) {
		if logPath == "" {
			return
		}
		if w, err := p.files.Append(logPath); err == nil {
			fmt.Fprintf(w, "MSI (s) (%s): %s\r\n", m.clock.Now().Format("15:04:05"), s)
			w.Close()
		}
	}
	logLine("=== Verbose logging started ===")
	data, err := p.files.ReadFile(pkg)
	if err != nil {
		logLine(fmt.Sprintf("Note: 1: 1309 2: 2 3: %s", pkg))
		logLine("MainEngineThread is returning 1619")
		return errInstallOpenFailed
	}
	base := strings.ToLower(pkg[strings.LastIndexAny(pkg, `\/`)+1:])
	if isQemuGAMSI(pkg) && len(data) > 0 && len(props) == 0 {
		if err := m.InstallQemuGuestAgent(); err != nil {
			logLine(fmt.Sprintf("installing QEMU Guest Agent: %v", err))
			return 1603
		}
		logLine("Product: QEMU guest agent -- Installation completed successfully.")
		logLine("MainEngineThread is returning 0")
		return 0
	}
	if !strings.HasPrefix(base, cloudbaseMSIPrefix) || !strings.HasSuffix(base, ".msi") || len(data) == 0 {
		m.unsupportedf("msiexec.exe /i %s: only the cloudbase-init MSI (CloudbaseInitSetup*.msi) and qemu-ga-x86_64.msi without properties are modelled", pkg)
		logLine("MainEngineThread is returning 1620")
		return errInstallInvalid
	}
	serial := ""
	if port := props["LOGGINGSERIALPORTNAME"]; port != "" {
		serial = "logging_serial_port_settings=" + port + ",115200,N,8\r\n"
	}
	user := "Admin"
	if u := props["USERNAME"]; u != "" {
		user = u
	}
	conf := "[DEFAULT]\r\nusername=" + user + "\r\ngroups=Administrators\r\ninject_user_password=true\r\n" +
		"bsdtar_path=" + CloudbaseInitDir + `\bin\bsdtar.exe` + "\r\n" +
		"mtools_path=" + CloudbaseInitDir + `\bin\` + "\r\n" +
		"verbose=true\r\ndebug=true\r\nlogdir=" + CloudbaseInitDir + `\log\` + "\r\nlogfile=cloudbase-init.log\r\n" +
		serial + "mtu_use_dhcp_config=true\r\nntp_use_dhcp_config=true\r\n" +
		"local_scripts_path=" + CloudbaseInitDir + `\LocalScripts\` + "\r\n"
	unattendConf := conf + "metadata_services=cloudbaseinit.metadata.services.base.EmptyMetadataService\r\n" +
		"plugins=cloudbaseinit.plugins.common.mtu.MTUPlugin,cloudbaseinit.plugins.common.sethostname.SetHostNamePlugin\r\n" +
		"allow_reboot=false\r\nstop_service_on_exit=false\r\ncheck_latest_version=false\r\n"
	files := map[string]string{
		`bin\SetSetupComplete.cmd`:           "@echo off\r\n",
		`Python\Scripts\cloudbase-init.exe`:  "MZ cloudbase-init (stand-in)\r\n",
		`conf\cloudbase-init.conf`:           conf,
		`conf\cloudbase-init-unattend.conf`:  unattendConf,
		`conf\Unattend.xml`:                  cloudbaseUnattendXML,
		`LocalScripts\README.txt`:            "",
		`log\cloudbase-init-installer.trace`: "",
	}
	for name, content := range files {
		if err := p.files.WriteFile(CloudbaseInitDir+`\`+name, []byte(content)); err != nil {
			logLine(fmt.Sprintf("writing %s: %v", name, err))
			return 1603
		}
	}
	reg := m.RegistryFor(m.opts.Users[0])
	_ = reg.SetExpandString(cloudbaseServiceKey, "ImagePath", `"`+CloudbaseInitDir+`\Python\Scripts\cloudbase-init.exe" --config-file "`+CloudbaseInitDir+`\conf\cloudbase-init.conf"`)
	_ = reg.SetDWORD(cloudbaseServiceKey, "Start", 2)
	objectName := ".\\cloudbase-init"
	if props["RUN_SERVICE_AS_LOCAL_SYSTEM"] == "1" {
		objectName = "LocalSystem"
	}
	_ = reg.SetString(cloudbaseServiceKey, "ObjectName", objectName)
	_ = reg.SetString(cloudbaseUninstall, "DisplayName", "Cloudbase-Init 1.1.6")
	_ = reg.SetString(cloudbaseUninstall, "InstallLocation", CloudbaseInitDir+`\`)
	logLine("Product: Cloudbase-Init 1.1.6 -- Installation completed successfully.")
	logLine("MainEngineThread is returning 0")
	return 0
}

// cloudbaseUnattendXML is the shape of cloudbase-init's conf\Unattend.xml.
const cloudbaseUnattendXML = `<?xml version="1.0" encoding="utf-8"?>
<unattend xmlns="urn:schemas-microsoft-com:unattend">
  <settings pass="generalize">
    <component name="Microsoft-Windows-PnpSysprep" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS">
      <PersistAllDeviceInstalls>true</PersistAllDeviceInstalls>
    </component>
  </settings>
  <settings pass="oobeSystem">
    <component name="Microsoft-Windows-Shell-Setup" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS">
      <OOBE>
        <HideEULAPage>true</HideEULAPage>
        <NetworkLocation>Work</NetworkLocation>
        <ProtectYourPC>1</ProtectYourPC>
        <SkipMachineOOBE>true</SkipMachineOOBE>
        <SkipUserOOBE>true</SkipUserOOBE>
      </OOBE>
    </component>
  </settings>
</unattend>
`

// sysprepProgram returns the programs added here, or nil.
func (m *Machine) sysprepProgram(abs string) func(p *proc) uint32 {
	if strings.EqualFold(abs, msiexecPath) {
		return m.runMsiexec
	}
	return nil
}
