package unattend

import (
	"encoding/xml"
	"strconv"
)

// Namespaces and fixed component attributes of an answer file.
const (
	Namespace      = "urn:schemas-microsoft-com:unattend"
	WCMNamespace   = "http://schemas.microsoft.com/WMIConfig/2002/State"
	PublicKeyToken = "31bf3856ad364e35"
	Language       = "neutral"
	VersionScope   = "nonSxS"
	actionAdd      = "add"
)

// Configuration passes.
const (
	PassWindowsPE        = "windowsPE"
	PassOfflineServicing = "offlineServicing"
	PassGeneralize       = "generalize"
	PassSpecialize       = "specialize"
	PassAuditSystem      = "auditSystem"
	PassAuditUser        = "auditUser"
	PassOOBESystem       = "oobeSystem"
)

// Passes lists every configuration pass Windows Setup knows.
var Passes = []string{
	PassWindowsPE, PassOfflineServicing, PassGeneralize, PassSpecialize,
	PassAuditSystem, PassAuditUser, PassOOBESystem,
}

// The types below mirror the answer-file schema. Field order is element
// order. wcm:* attributes are written literally; the root element declares
// the wcm prefix.

type xUnattend struct {
	XMLName  xml.Name    `xml:"unattend"`
	Xmlns    string      `xml:"xmlns,attr"`
	XmlnsWCM string      `xml:"xmlns:wcm,attr"`
	Settings []xSettings `xml:"settings"`
}

type xSettings struct {
	XMLName    xml.Name `xml:"settings"`
	Pass       string   `xml:"pass,attr"`
	Components []any
}

type xComponent struct {
	Name                  string `xml:"name,attr"`
	ProcessorArchitecture string `xml:"processorArchitecture,attr"`
	PublicKeyToken        string `xml:"publicKeyToken,attr"`
	Language              string `xml:"language,attr"`
	VersionScope          string `xml:"versionScope,attr"`
}

func newComponent(name, arch string) xComponent {
	return xComponent{
		Name:                  name,
		ProcessorArchitecture: arch,
		PublicKeyToken:        PublicKeyToken,
		Language:              Language,
		VersionScope:          VersionScope,
	}
}

// --- windowsPE -------------------------------------------------------------

type xInternationalCoreWinPE struct {
	XMLName xml.Name `xml:"component"`
	xComponent
	SetupUILanguage struct {
		UILanguage string
	}
	InputLocale  string
	SystemLocale string
	UILanguage   string
	UserLocale   string
}

type xPnpCustomizationsWinPE struct {
	XMLName xml.Name `xml:"component"`
	xComponent
	DriverPaths struct {
		PathAndCredentials []xPathAndCredentials
	}
}

type xPathAndCredentials struct {
	Action   string `xml:"wcm:action,attr"`
	KeyValue string `xml:"wcm:keyValue,attr"`
	Path     string
}

type xSetupWinPE struct {
	XMLName xml.Name `xml:"component"`
	xComponent
	DiskConfiguration xDiskConfiguration
	ImageInstall      xImageInstall
	UserData          xUserData
	RunSynchronous    *xRunSynchronous `xml:",omitempty"`
}

type xDiskConfiguration struct {
	Disk       xDisk
	WillShowUI string
}

type xDisk struct {
	Action           string `xml:"wcm:action,attr"`
	DiskID           int
	WillWipeDisk     bool
	CreatePartitions struct {
		CreatePartition []xCreatePartition
	}
	ModifyPartitions struct {
		ModifyPartition []xModifyPartition
	}
}

type xCreatePartition struct {
	Action string `xml:"wcm:action,attr"`
	Order  int
	Type   string
	Size   int  `xml:",omitempty"`
	Extend bool `xml:",omitempty"`
}

type xModifyPartition struct {
	Action      string `xml:"wcm:action,attr"`
	Order       int
	PartitionID int
	Active      bool   `xml:",omitempty"`
	Format      string `xml:",omitempty"`
	Label       string `xml:",omitempty"`
	Letter      string `xml:",omitempty"`
	TypeID      string `xml:",omitempty"`
}

type xImageInstall struct {
	OSImage struct {
		InstallFrom struct {
			MetaData []xMetaData
		}
		InstallTo struct {
			DiskID      int
			PartitionID int
		}
		InstallToAvailablePartition bool
		WillShowUI                  string
	}
}

type xMetaData struct {
	Action string `xml:"wcm:action,attr"`
	Key    string
	Value  string
}

type xUserData struct {
	AcceptEula   bool
	FullName     string
	Organization string       `xml:",omitempty"`
	ProductKey   *xProductKey `xml:",omitempty"`
}

type xProductKey struct {
	Key        string
	WillShowUI string
}

type xRunSynchronous struct {
	RunSynchronousCommand []xRunSynchronousCommand
}

type xRunSynchronousCommand struct {
	Action      string `xml:"wcm:action,attr"`
	Order       int
	Path        string
	Description string
}

// --- specialize ------------------------------------------------------------

type xShellSetupSpecialize struct {
	XMLName xml.Name `xml:"component"`
	xComponent
	ComputerName string
	TimeZone     string
}

type xDeployment struct {
	XMLName xml.Name `xml:"component"`
	xComponent
	RunSynchronous xRunSynchronous
}

type xLocalSessionManager struct {
	XMLName xml.Name `xml:"component"`
	xComponent
	FDenyTSConnections bool `xml:"fDenyTSConnections"`
}

type xRDPWinStationExtensions struct {
	XMLName xml.Name `xml:"component"`
	xComponent
	UserAuthentication int
}

type xFirewall struct {
	XMLName xml.Name `xml:"component"`
	xComponent
	FirewallGroups struct {
		FirewallGroup []xFirewallGroup
	}
}

type xFirewallGroup struct {
	Action   string `xml:"wcm:action,attr"`
	KeyValue string `xml:"wcm:keyValue,attr"`
	Active   bool
	Group    string
	Profile  string
}

// --- oobeSystem ------------------------------------------------------------

type xInternationalCore struct {
	XMLName xml.Name `xml:"component"`
	xComponent
	InputLocale  string
	SystemLocale string
	UILanguage   string
	UserLocale   string
}

type xShellSetupOOBE struct {
	XMLName xml.Name `xml:"component"`
	xComponent
	AutoLogon          xAutoLogon
	FirstLogonCommands struct {
		SynchronousCommand []xSynchronousCommand
	}
	OOBE         xOOBE
	UserAccounts xUserAccounts
}

type xPassword struct {
	Value     string
	PlainText bool
}

type xAutoLogon struct {
	Password   xPassword
	Enabled    bool
	LogonCount int
	Username   string
}

type xSynchronousCommand struct {
	Action      string `xml:"wcm:action,attr"`
	Order       int
	CommandLine string
	Description string
}

type xOOBE struct {
	HideEULAPage              bool
	HideLocalAccountScreen    bool
	HideOEMRegistrationScreen bool
	HideOnlineAccountScreens  bool
	HideWirelessSetupInOOBE   bool
	ProtectYourPC             int
}

type xUserAccounts struct {
	AdministratorPassword *xPassword      `xml:",omitempty"`
	LocalAccounts         *xLocalAccounts `xml:",omitempty"`
}

type xLocalAccounts struct {
	LocalAccount []xLocalAccount
}

type xLocalAccount struct {
	Action      string `xml:"wcm:action,attr"`
	Password    xPassword
	Description string
	DisplayName string
	Group       string
	Name        string
}

// --- building --------------------------------------------------------------

// build turns validated, defaulted settings into the answer-file tree.
func build(s Settings) xUnattend {
	return xUnattend{
		Xmlns:    Namespace,
		XmlnsWCM: WCMNamespace,
		Settings: []xSettings{
			buildPass(s, PassWindowsPE),
			buildPass(s, PassSpecialize),
			buildPass(s, PassOOBESystem),
		},
	}
}

// buildPass returns the settings element of one pass; passes winbake does
// not configure come back without components.
func buildPass(s Settings, pass string) xSettings {
	switch pass {
	case PassWindowsPE:
		return xSettings{Pass: pass, Components: windowsPE(s)}
	case PassSpecialize:
		return xSettings{Pass: pass, Components: specialize(s)}
	case PassOOBESystem:
		return xSettings{Pass: pass, Components: oobeSystem(s)}
	}
	return xSettings{Pass: pass}
}

func windowsPE(s Settings) []any {
	arch := s.Architecture
	intl := xInternationalCoreWinPE{
		xComponent:   newComponent("Microsoft-Windows-International-Core-WinPE", arch),
		InputLocale:  s.InputLocale,
		SystemLocale: s.SystemLocale,
		UILanguage:   s.UILanguage,
		UserLocale:   s.UserLocale,
	}
	intl.SetupUILanguage.UILanguage = s.UILanguage
	comps := []any{intl}

	if paths := s.DriverPaths(); len(paths) > 0 {
		pnp := xPnpCustomizationsWinPE{xComponent: newComponent("Microsoft-Windows-PnpCustomizationsWinPE", arch)}
		for i, p := range paths {
			pnp.DriverPaths.PathAndCredentials = append(pnp.DriverPaths.PathAndCredentials, xPathAndCredentials{
				Action: actionAdd, KeyValue: strconv.Itoa(i + 1), Path: p,
			})
		}
		comps = append(comps, pnp)
	}

	setup := xSetupWinPE{xComponent: newComponent("Microsoft-Windows-Setup", arch)}
	layout := LayoutFor(s.Firmware, s.RecoveryPartitionMB)
	setup.DiskConfiguration = buildDisk(layout)
	oi := &setup.ImageInstall.OSImage
	oi.InstallFrom.MetaData = []xMetaData{{Action: actionAdd, Key: "/IMAGE/NAME", Value: s.ImageName}}
	oi.InstallTo.DiskID = 0
	oi.InstallTo.PartitionID = layout.WindowsPartition
	oi.InstallToAvailablePartition = false
	oi.WillShowUI = "OnError"
	setup.UserData = xUserData{AcceptEula: true, FullName: s.FullName, Organization: s.Organization}
	if s.ProductKey != "" {
		setup.UserData.ProductKey = &xProductKey{Key: s.ProductKey, WillShowUI: "OnError"}
	}
	if cmds := s.WindowsPECommands(); len(cmds) > 0 {
		setup.RunSynchronous = runSynchronous(cmds)
	}
	return append(comps, setup)
}

func buildDisk(l Layout) xDiskConfiguration {
	d := xDiskConfiguration{WillShowUI: "OnError"}
	d.Disk = xDisk{Action: actionAdd, DiskID: 0, WillWipeDisk: true}
	order := 0
	for _, p := range l.Partitions {
		d.Disk.CreatePartitions.CreatePartition = append(d.Disk.CreatePartitions.CreatePartition, xCreatePartition{
			Action: actionAdd, Order: p.Number, Type: p.Type, Size: p.SizeMB, Extend: p.SizeMB == 0,
		})
		if p.Format == "" {
			continue // MSR: nothing to format
		}
		order++
		d.Disk.ModifyPartitions.ModifyPartition = append(d.Disk.ModifyPartitions.ModifyPartition, xModifyPartition{
			Action: actionAdd, Order: order, PartitionID: p.Number, Active: p.Active,
			Format: p.Format, Label: p.Label, Letter: p.Letter, TypeID: p.TypeID,
		})
	}
	return d
}

func runSynchronous(cmds []Command) *xRunSynchronous {
	rs := &xRunSynchronous{}
	for _, c := range cmds {
		rs.RunSynchronousCommand = append(rs.RunSynchronousCommand, xRunSynchronousCommand{
			Action: actionAdd, Order: c.Order, Path: c.CommandLine, Description: c.Description,
		})
	}
	return rs
}

func specialize(s Settings) []any {
	arch := s.Architecture
	comps := []any{xShellSetupSpecialize{
		xComponent:   newComponent("Microsoft-Windows-Shell-Setup", arch),
		ComputerName: s.ComputerName,
		TimeZone:     s.TimeZone,
	}}
	if cmds := s.SpecializeCommands(); len(cmds) > 0 {
		comps = append(comps, xDeployment{
			xComponent:     newComponent("Microsoft-Windows-Deployment", arch),
			RunSynchronous: *runSynchronous(cmds),
		})
	}
	if s.EnableRDP {
		nla := 0
		if s.RDPRequireNLA {
			nla = 1
		}
		fw := xFirewall{xComponent: newComponent("Networking-MPSSVC-Svc", arch)}
		fw.FirewallGroups.FirewallGroup = []xFirewallGroup{{
			Action: actionAdd, KeyValue: "RemoteDesktop", Active: true,
			Group: "@FirewallAPI.dll,-28752", Profile: "all",
		}}
		comps = append(comps,
			xLocalSessionManager{
				xComponent:         newComponent("Microsoft-Windows-TerminalServices-LocalSessionManager", arch),
				FDenyTSConnections: false,
			},
			xRDPWinStationExtensions{
				xComponent:         newComponent("Microsoft-Windows-TerminalServices-RDP-WinStationExtensions", arch),
				UserAuthentication: nla,
			},
			fw,
		)
	}
	return comps
}

func oobeSystem(s Settings) []any {
	arch := s.Architecture
	intl := xInternationalCore{
		xComponent:   newComponent("Microsoft-Windows-International-Core", arch),
		InputLocale:  s.InputLocale,
		SystemLocale: s.SystemLocale,
		UILanguage:   s.UILanguage,
		UserLocale:   s.UserLocale,
	}
	shell := xShellSetupOOBE{xComponent: newComponent("Microsoft-Windows-Shell-Setup", arch)}
	shell.AutoLogon = xAutoLogon{
		Password:   xPassword{Value: EncodeUserPassword(s.Password), PlainText: false},
		Enabled:    true,
		LogonCount: s.AutoLogonCount,
		Username:   s.Username,
	}
	for _, c := range s.FirstLogonCommands() {
		shell.FirstLogonCommands.SynchronousCommand = append(shell.FirstLogonCommands.SynchronousCommand, xSynchronousCommand{
			Action: actionAdd, Order: c.Order, CommandLine: c.CommandLine, Description: c.Description,
		})
	}
	shell.OOBE = xOOBE{
		HideEULAPage:              true,
		HideLocalAccountScreen:    true,
		HideOEMRegistrationScreen: true,
		HideOnlineAccountScreens:  true,
		HideWirelessSetupInOOBE:   true,
		ProtectYourPC:             3,
	}
	if s.IsBuiltinAdministrator() {
		shell.UserAccounts.AdministratorPassword = &xPassword{Value: EncodeAdministratorPassword(s.Password), PlainText: false}
	} else {
		shell.UserAccounts.LocalAccounts = &xLocalAccounts{LocalAccount: []xLocalAccount{{
			Action:      actionAdd,
			Password:    xPassword{Value: EncodeUserPassword(s.Password), PlainText: false},
			Description: "winbake build account",
			DisplayName: s.Username,
			// Language-neutral group name, as Microsoft requires for
			// multilingual images.
			Group: "Administrators",
			Name:  s.Username,
		}}}
	}
	return []any{intl, shell}
}
