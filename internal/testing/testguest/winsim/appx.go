package winsim

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
)

// Appx packages as Windows installs them for one user (Add-AppxPackage)
// and provisions them for every user (Get-/Remove-AppxProvisionedPackage),
// and sysprep's Appx provider, which refuses to generalize while a package
// is installed for a user but not provisioned.
//
// Sysprep's refusal is logged as on Windows Server 2022 (build 20348, a
// setupact.log posted with Edge GameAssist blocking sysprep, July 2025) and
// as Microsoft documents it: "Errors when capturing Windows 11 image by
// using capture media in Configuration Manager" (setupact.log, the same
// lines) and KB 2769827 "Sysprep fails after you remove or update Microsoft
// Store apps that include built-in Windows images" (the Error lines in
// setuperr.log). The check runs in the generalize phase's pre-validation
// (AppxSysprep.dll's SysprepGeneralizeValidate from Generalize.xml), before
// sysprep changes anything: the image state stays IMAGE_STATE_COMPLETE and
// sysprep can run again ("After resolving the issue, use Sysprep to
// validate your installation again", sysprep's dialog in the same capture;
// "After the package is removed, restart the capture process and monitor
// other packages in the same situation", Configuration Manager's article).
// Each run names one package, the first it meets, as every capture does;
// the stand-in meets them in name order.

// sysprepLog appends lines to sysprep's Panther logs: every line to
// setupact.log, errors to setuperr.log too, in their layout
// ("<date> <time>, <level padded to 10> <code or 10 blanks> SYSPRP <text>").
type sysprepLog struct{ m *Machine }

const sysprepPanther = `C:\Windows\System32\Sysprep\Panther\`

func (l sysprepLog) write(level, code, text string) {
	line := fmt.Sprintf("%s, %-10s %-10s SYSPRP %s\r\n", l.m.clock.Now().Format("2006-01-02 15:04:05"), level, code, text)
	files := []string{"setupact.log"}
	if level == "Error" {
		files = append(files, "setuperr.log")
	}
	for _, f := range files {
		w, err := l.m.files.Append(sysprepPanther + f)
		if err == nil {
			_, err = io.WriteString(w, line)
			if cerr := w.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			l.m.unsupportedf("writing sysprep's %s: %v", f, err)
		}
	}
}

func (l sysprepLog) info(text string)         { l.write("Info", "", text) }
func (l sysprepLog) errorf(code, text string) { l.write("Error", code, text) }

// begin is the banner every run starts with.
func (l sysprepLog) begin() {
	l.info("========================================================")
	l.info("===          Beginning of a new sysprep run          ===")
	l.info("========================================================")
}

// end is the last line of every run.
func (l sysprepLog) end() { l.write("Info", "[0x0f0052]", "Shutting down SysPrep log") }

// appxBlocked logs the Appx provider's refusal to generalize because of
// the package fullName.
func (l sysprepLog) appxBlocked(fullName string) {
	const dll = `C:\Windows\System32\AppxSysprep.dll`
	l.write("Info", "[0x0f00d7]", "WinMain:Pre-validing 'generalize' internal providers.")
	l.info(`SysprepSession::Validate: Beginning action execution from C:\Windows\System32\Sysprep\ActionFiles\Generalize.xml`)
	l.info("ActionPlatform::LaunchModule: Executing method 'SysprepGeneralizeValidate' from " + dll)
	l.info("Entering SysprepGeneralizeValidate (Appx) - validating whether all apps are also provisioned.")
	l.errorf("", "Package "+fullName+" was installed for a user, but not provisioned for all users. This package will not function properly in the sysprep image.")
	l.errorf("", "Failed to remove apps for the current user: 0x80073cf2.")
	l.errorf("", "Exit code of RemoveAllApps thread was 0x3cf2.")
	l.errorf("", "ActionPlatform::LaunchModule: Failure occurred while executing 'SysprepGeneralizeValidate' from "+dll+"; dwRet = 0x3cf2")
	l.errorf("", `SysprepSession::Validate: Error in validating actions from C:\Windows\System32\Sysprep\ActionFiles\Generalize.xml; dwRet = 0x3cf2`)
	l.errorf("", "RunPlatformActions:Failed while validating Sysprep session actions; dwRet = 0x3cf2")
	l.errorf("[0x0f0070]", "RunDlls:An error occurred while running registry sysprep DLLs, halting sysprep execution. dwRet = 0x3cf2")
	l.errorf("[0x0f00d8]", "WinMain:Hit failure while pre-validate sysprep generalize internal providers; hr = 0x80073cf2")
}

// PublisherID is the 13-character publisher ID of a package full name:
// the first 8 bytes of the SHA-256 of the publisher (UTF-16LE), with a 0
// bit appended, in Crockford's base32 (lower case). Microsoft's "Package
// identity overview" calls it a hash of the publisher; this is the hash
// that gives Microsoft's own IDs: 8wekyb3d8bbwe for "CN=Microsoft
// Corporation, O=Microsoft Corporation, L=Redmond, S=Washington, C=US",
// cw5n1h2txyewy for "CN=Microsoft Windows, ..." (winsim's tests check
// both).
func PublisherID(publisher string) string {
	u := utf16.Encode([]rune(publisher))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	sum := sha256.Sum256(b)
	bits := binary.BigEndian.Uint64(sum[:8])
	const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	out := make([]byte, 13)
	for i := 0; i < 13; i++ {
		// 65 bits: the 64 of the hash and a trailing 0; group i is bits
		// 5i..5i+4 of them.
		shift := 59 - 5*i
		var v uint64
		if shift >= 0 {
			v = bits >> uint(shift)
		} else {
			v = bits << uint(-shift)
		}
		out[i] = alphabet[v&31]
	}
	return string(out)
}

// appxIdentity is the Identity element of an AppxManifest.xml.
type appxIdentity struct {
	Name                  string `xml:"Name,attr"`
	Publisher             string `xml:"Publisher,attr"`
	Version               string `xml:"Version,attr"`
	ProcessorArchitecture string `xml:"ProcessorArchitecture,attr"`
	ResourceID            string `xml:"ResourceId,attr"`
}

// FullName is <Name>_<Version>_<Architecture>_<ResourceId>_<PublisherId>
// ("Package identity overview"; the architecture is neutral when the
// manifest names none).
func (id appxIdentity) FullName() string {
	arch := strings.ToLower(id.ProcessorArchitecture)
	if arch == "" {
		arch = "neutral"
	}
	return id.Name + "_" + id.Version + "_" + arch + "_" + id.ResourceID + "_" + PublisherID(id.Publisher)
}

// readAppxIdentity reads the package identity of an .appx or .msix file: a
// ZIP whose AppxManifest.xml has an Identity element.
func readAppxIdentity(data []byte) (appxIdentity, error) {
	z, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return appxIdentity{}, fmt.Errorf("not a package (ZIP): %v", err)
	}
	for _, f := range z.File {
		if f.Name != "AppxManifest.xml" {
			continue
		}
		r, err := f.Open()
		if err != nil {
			return appxIdentity{}, err
		}
		defer func() { _ = r.Close() }()
		var m struct {
			Identity appxIdentity `xml:"Identity"`
		}
		if err := xml.NewDecoder(r).Decode(&m); err != nil {
			return appxIdentity{}, fmt.Errorf("AppxManifest.xml: %v", err)
		}
		if m.Identity.Name == "" || m.Identity.Publisher == "" || m.Identity.Version == "" {
			return appxIdentity{}, fmt.Errorf("AppxManifest.xml has no Identity with Name, Publisher and Version")
		}
		return m.Identity, nil
	}
	return appxIdentity{}, fmt.Errorf("no AppxManifest.xml (a bundle's AppxBundleManifest.xml is not modelled)")
}

// Add-AppxPackage -Path <package> installs the package for the user who
// runs it (no -Register, -DependencyPath or bundles).
var addAppxPackage = &psCmdlet{
	params: []psParam{{name: "path", position: 0}},
	module: true,
	run: func(c *psCall) ([]any, error) {
		p := c.str("path")
		data, err := c.rt.files().ReadFile(p)
		if err != nil {
			return nil, &psUnsupported{msg: fmt.Sprintf("Add-AppxPackage -Path %s: %v (Windows' error for it is not modelled)", p, err), at: c.e.at}
		}
		id, err := readAppxIdentity(data)
		if err != nil {
			return nil, &psUnsupported{msg: fmt.Sprintf("Add-AppxPackage -Path %s: %v", p, err), at: c.e.at}
		}
		if err := c.rt.m.InstallAppx(c.rt.p.user, id.FullName()); err != nil {
			return nil, &psUnsupported{msg: fmt.Sprintf("Add-AppxPackage: %v", err), at: c.e.at}
		}
		return nil, nil
	},
}

// provisionedAppxObject is what Get-AppxProvisionedPackage returns
// (Microsoft.Dism.Commands.AppxPackageObject).
type provisionedAppxObject struct{ fullName string }

func (a *provisionedAppxObject) psProperty(name string) (any, bool) {
	parts := strings.Split(a.fullName, "_")
	if len(parts) != 5 {
		return nil, false
	}
	switch name {
	case "packagename":
		return a.fullName, true
	case "displayname":
		return parts[0], true
	case "version":
		return parts[1], true
	case "resourceid":
		return parts[3], true
	case "publisherid":
		return parts[4], true
	}
	return nil, false
}

func (a *provisionedAppxObject) String() string { return a.fullName }

// Get-AppxProvisionedPackage -Online lists the provisioned packages.
var getAppxProvisionedPackage = &psCmdlet{
	params: []psParam{{name: "online", isSwitch: true, position: -1}},
	module: true,
	run: func(c *psCall) ([]any, error) {
		if !c.flag("online") {
			return nil, &psUnsupported{msg: "Get-AppxProvisionedPackage without -Online (offline images)", at: c.e.at}
		}
		var out []any
		for _, p := range c.rt.m.AppxPackages() {
			if p.User == "" {
				out = append(out, &provisionedAppxObject{fullName: p.FullName})
			}
		}
		return out, nil
	},
}

// dismImageObject is what Remove-AppxProvisionedPackage returns
// (Microsoft.Dism.Commands.ImageObject) for the running Windows.
type dismImageObject struct{}

func (dismImageObject) psProperty(name string) (any, bool) {
	switch name {
	case "online":
		return true, true
	case "restartneeded":
		return false, true
	}
	return nil, false
}

// Remove-AppxProvisionedPackage -Online -PackageName <full name> removes a
// provisioned package; one that is not provisioned is not modelled.
var removeAppxProvisionedPackage = &psCmdlet{
	params: []psParam{{name: "online", isSwitch: true, position: -1}, {name: "packagename", position: -1}},
	module: true,
	run: func(c *psCall) ([]any, error) {
		full := c.str("packagename")
		if !c.flag("online") || full == "" {
			return nil, &psUnsupported{msg: "Remove-AppxProvisionedPackage without -Online -PackageName", at: c.e.at}
		}
		m := c.rt.m
		for _, p := range m.AppxPackages() {
			if p.User == "" && strings.EqualFold(p.FullName, full) {
				if err := m.RegistryFor(m.opts.Users[0]).DeleteKey(appxStoreKey + `\` + appxProvisionedName + `\` + p.FullName); err != nil {
					return nil, &psUnsupported{msg: fmt.Sprintf("Remove-AppxProvisionedPackage: %v", err), at: c.e.at}
				}
				return []any{dismImageObject{}}, nil
			}
		}
		return nil, &psUnsupported{msg: fmt.Sprintf("Remove-AppxProvisionedPackage of %s, which is not provisioned (Windows' error for it is not modelled)", full), at: c.e.at}
	},
}

var _ = func() bool {
	sysprepCmdlets["add-appxpackage"] = addAppxPackage
	sysprepCmdlets["get-appxprovisionedpackage"] = getAppxProvisionedPackage
	sysprepCmdlets["remove-appxprovisionedpackage"] = removeAppxProvisionedPackage
	return true
}()

// AppxPackageFile is a package the stand-in installs with Add-AppxPackage:
// a ZIP holding an AppxManifest.xml with the identity. Windows would also
// want the package's block map and signature; the stand-in reads only the
// identity.
func AppxPackageFile(name, publisher, version, arch string) []byte {
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	w, _ := z.Create("AppxManifest.xml")
	var attrs bytes.Buffer
	for _, a := range [][2]string{{"Name", name}, {"Publisher", publisher}, {"Version", version}, {"ProcessorArchitecture", arch}} {
		attrs.WriteString(" " + a[0] + `="`)
		_ = xml.EscapeText(&attrs, []byte(a[1])) // a bytes.Buffer does not fail
		attrs.WriteString(`"`)
	}
	// Writes to a bytes.Buffer do not fail.
	_, _ = fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<Package xmlns=\"http://schemas.microsoft.com/appx/manifest/foundation/windows10\">\r\n  <Identity%s />\r\n</Package>\r\n", attrs.String())
	_ = z.Close()
	return b.Bytes()
}
