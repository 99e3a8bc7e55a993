package setup

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/winbake/packer-plugin-winbake/internal/unattend"
)

// Answer is what the stand-in understands of an answer file: the settings of
// the components Windows Setup applies for the guest's processor
// architecture. Components for another architecture are ignored, as Setup
// ignores them.
type Answer struct {
	// Source is where the file was found, e.g. `D:\autounattend.xml`.
	Source string
	// Raw is the file as read.
	Raw []byte

	// windowsPE, Microsoft-Windows-Setup (nil when absent).
	Setup *SetupSettings
	// windowsPE, Microsoft-Windows-PnpCustomizationsWinPE.
	DriverPaths []string

	// specialize, Microsoft-Windows-Shell-Setup.
	ComputerName string
	TimeZone     string
	// specialize, Microsoft-Windows-Deployment.
	SpecializeCommands []Command

	// oobeSystem, Microsoft-Windows-Shell-Setup.
	AutoLogon          *AutoLogon
	FirstLogonCommands []Command
	Accounts           []Account
}

// SetupSettings are the windowsPE Microsoft-Windows-Setup settings.
type SetupSettings struct {
	Disk         *DiskConfig // nil without DiskConfiguration/Disk
	ImageKey     string      // /IMAGE/NAME, /IMAGE/INDEX or /IMAGE/DESCRIPTION; "" when none
	ImageValue   string
	InstallTo    *InstallTo // nil without OSImage/InstallTo
	AcceptEula   bool
	FullName     string
	Organization string
	ProductKey   string
	Commands     []Command // RunSynchronous
}

// DiskConfig is one <Disk> of DiskConfiguration.
type DiskConfig struct {
	DiskID       int
	WillWipeDisk bool
	Create       []CreatePartition // in Order
	Modify       []ModifyPartition // in Order
}

// CreatePartition is a CreatePartition entry.
type CreatePartition struct {
	Order  int
	Type   string // "Primary", "EFI", "MSR", "Extended", "Logical"
	SizeMB int
	Extend bool
}

// ModifyPartition is a ModifyPartition entry.
type ModifyPartition struct {
	Order       int
	PartitionID int
	Active      bool
	Format      string
	Label       string
	Letter      string
	TypeID      string
}

// InstallTo is ImageInstall/OSImage/InstallTo.
type InstallTo struct {
	DiskID, PartitionID int
}

// AutoLogon is oobeSystem Shell-Setup AutoLogon.
type AutoLogon struct {
	Enabled    bool
	Username   string
	Password   string // decoded
	LogonCount int
}

// Account is a user account the answer file creates or sets a password for.
type Account struct {
	Name     string
	Password string // decoded
	Group    string
	Builtin  bool // the built-in Administrator (AdministratorPassword)
	// CloudbaseInit: cloudbase-init created the account or set its
	// password. Whether Windows logs it on (its password may have to be
	// changed first) is the simulated Windows' state.
	CloudbaseInit bool `json:",omitempty"`
}

// Command is a RunSynchronousCommand or SynchronousCommand.
type Command struct {
	Order       int
	CommandLine string
	Description string
}

// Architecture is the processor architecture of the stand-in's Windows.
const Architecture = unattend.ArchAMD64

// --- the XML as read ---------------------------------------------------------

type rUnattend struct {
	Settings []struct {
		Pass       string  `xml:"pass,attr"`
		Components []rComp `xml:"component"`
	} `xml:"settings"`
}

type rPassword struct {
	Value     string
	PlainText string
}

type rCommand struct {
	Order       string
	Path        string
	CommandLine string
	Description string
}

type rComp struct {
	Name string `xml:"name,attr"`
	Arch string `xml:"processorArchitecture,attr"`

	DiskConfiguration *struct {
		Disk []struct {
			DiskID           string
			WillWipeDisk     string
			CreatePartitions struct {
				CreatePartition []struct {
					Order, Type, Size, Extend string
				}
			}
			ModifyPartitions struct {
				ModifyPartition []struct {
					Order, PartitionID, Active, Format, Label, Letter, TypeID string
				}
			}
		}
	}
	ImageInstall *struct {
		OSImage *struct {
			InstallFrom *struct {
				MetaData []struct{ Key, Value string }
			}
			InstallTo *struct{ DiskID, PartitionID string }
		}
	}
	UserData *struct {
		AcceptEula   string
		FullName     string
		Organization string
		ProductKey   *struct{ Key string }
	}
	RunSynchronous *struct {
		RunSynchronousCommand []rCommand
	}
	DriverPaths *struct {
		PathAndCredentials []struct{ Path string }
	}
	ComputerName *string
	TimeZone     *string
	AutoLogon    *struct {
		Password   *rPassword
		Enabled    string
		LogonCount string
		Username   string
	}
	FirstLogonCommands *struct {
		SynchronousCommand []rCommand
	}
	UserAccounts *struct {
		AdministratorPassword *rPassword
		LocalAccounts         *struct {
			LocalAccount []struct {
				Password *rPassword
				Group    string
				Name     string
			}
		}
	}
}

// ParseAnswer reads an answer file as Windows Setup would. Errors are
// *Error values with the message Setup shows.
func ParseAnswer(source string, b []byte) (*Answer, error) {
	invalid := func(pass, component, detail string) error {
		msg := fmt.Sprintf("Windows could not parse or process the unattend answer file [%s] for pass [%s]. The answer file is invalid.", source, pass)
		if component != "" {
			msg = fmt.Sprintf("Windows could not parse or process the unattend answer file [%s] for pass [%s]. The settings specified in the answer file cannot be applied. The error was detected while processing settings for component [%s].", source, pass, component)
		}
		return &Error{Pass: unattend.PassWindowsPE, Message: msg, Details: []string{detail}}
	}
	if err := unattend.CheckAnswerFile(b); err != nil {
		return nil, invalid(unattend.PassWindowsPE, "", err.Error())
	}
	var doc rUnattend
	if err := xml.Unmarshal(b, &doc); err != nil {
		return nil, invalid(unattend.PassWindowsPE, "", err.Error())
	}
	a := &Answer{Source: source, Raw: b}
	for _, s := range doc.Settings {
		for _, c := range s.Components {
			if !strings.EqualFold(c.Arch, Architecture) {
				continue
			}
			if err := a.apply(s.Pass, c); err != nil {
				return nil, invalid(s.Pass, c.Name, err.Error())
			}
		}
	}
	return a, nil
}

func (a *Answer) apply(pass string, c rComp) error {
	switch {
	case pass == unattend.PassWindowsPE && c.Name == "Microsoft-Windows-Setup":
		return a.applySetup(c)
	case pass == unattend.PassWindowsPE && c.Name == "Microsoft-Windows-PnpCustomizationsWinPE":
		if c.DriverPaths != nil {
			for i, p := range c.DriverPaths.PathAndCredentials {
				if strings.TrimSpace(p.Path) == "" {
					return fmt.Errorf("DriverPaths/PathAndCredentials[%d]/Path is empty", i+1)
				}
				if len(p.Path) > 259 {
					return fmt.Errorf("DriverPaths/PathAndCredentials[%d]/Path is longer than 259 characters", i+1)
				}
				a.DriverPaths = append(a.DriverPaths, strings.TrimSpace(p.Path))
			}
		}
	case pass == unattend.PassSpecialize && c.Name == "Microsoft-Windows-Shell-Setup":
		if c.ComputerName != nil {
			a.ComputerName = strings.TrimSpace(*c.ComputerName)
		}
		if c.TimeZone != nil {
			a.TimeZone = strings.TrimSpace(*c.TimeZone)
		}
	case pass == unattend.PassSpecialize && c.Name == "Microsoft-Windows-Deployment":
		if c.RunSynchronous != nil {
			cmds, err := commands(c.RunSynchronous.RunSynchronousCommand, true)
			if err != nil {
				return err
			}
			a.SpecializeCommands = cmds
		}
	case pass == unattend.PassOOBESystem && c.Name == "Microsoft-Windows-Shell-Setup":
		return a.applyOOBE(c)
	}
	return nil
}

func (a *Answer) applySetup(c rComp) error {
	s := &SetupSettings{}
	if dc := c.DiskConfiguration; dc != nil && len(dc.Disk) > 0 {
		if len(dc.Disk) > 1 {
			return fmt.Errorf("DiskConfiguration has %d <Disk> entries; the stand-in configures one disk", len(dc.Disk))
		}
		d := dc.Disk[0]
		id, err := integer("Disk/DiskID", d.DiskID)
		if err != nil {
			return err
		}
		wipe, err := boolean("Disk/WillWipeDisk", d.WillWipeDisk, false)
		if err != nil {
			return err
		}
		disk := &DiskConfig{DiskID: id, WillWipeDisk: wipe}
		for i, p := range d.CreatePartitions.CreatePartition {
			where := fmt.Sprintf("CreatePartitions/CreatePartition[%d]", i+1)
			order, err := integer(where+"/Order", p.Order)
			if err != nil {
				return err
			}
			cp := CreatePartition{Order: order, Type: strings.TrimSpace(p.Type)}
			if cp.Extend, err = boolean(where+"/Extend", p.Extend, false); err != nil {
				return err
			}
			if strings.TrimSpace(p.Size) != "" {
				if cp.SizeMB, err = integer(where+"/Size", p.Size); err != nil {
					return err
				}
			}
			disk.Create = append(disk.Create, cp)
		}
		for i, p := range d.ModifyPartitions.ModifyPartition {
			where := fmt.Sprintf("ModifyPartitions/ModifyPartition[%d]", i+1)
			order, err := integer(where+"/Order", p.Order)
			if err != nil {
				return err
			}
			pid, err := integer(where+"/PartitionID", p.PartitionID)
			if err != nil {
				return err
			}
			mp := ModifyPartition{Order: order, PartitionID: pid, Format: strings.TrimSpace(p.Format),
				Label: strings.TrimSpace(p.Label), Letter: strings.TrimSpace(p.Letter), TypeID: strings.TrimSpace(p.TypeID)}
			if mp.Active, err = boolean(where+"/Active", p.Active, false); err != nil {
				return err
			}
			disk.Modify = append(disk.Modify, mp)
		}
		sortBy(disk.Create, func(p CreatePartition) int { return p.Order })
		sortBy(disk.Modify, func(p ModifyPartition) int { return p.Order })
		s.Disk = disk
	}
	if ii := c.ImageInstall; ii != nil && ii.OSImage != nil {
		if f := ii.OSImage.InstallFrom; f != nil && len(f.MetaData) > 0 {
			s.ImageKey = strings.TrimSpace(f.MetaData[0].Key)
			s.ImageValue = strings.TrimSpace(f.MetaData[0].Value)
		}
		if t := ii.OSImage.InstallTo; t != nil {
			disk, err := integer("InstallTo/DiskID", t.DiskID)
			if err != nil {
				return err
			}
			part, err := integer("InstallTo/PartitionID", t.PartitionID)
			if err != nil {
				return err
			}
			s.InstallTo = &InstallTo{DiskID: disk, PartitionID: part}
		}
	}
	if u := c.UserData; u != nil {
		var err error
		if s.AcceptEula, err = boolean("UserData/AcceptEula", u.AcceptEula, false); err != nil {
			return err
		}
		s.FullName, s.Organization = u.FullName, u.Organization
		if u.ProductKey != nil {
			s.ProductKey = strings.TrimSpace(u.ProductKey.Key)
		}
	}
	if c.RunSynchronous != nil {
		cmds, err := commands(c.RunSynchronous.RunSynchronousCommand, true)
		if err != nil {
			return err
		}
		s.Commands = cmds
	}
	a.Setup = s
	return nil
}

func (a *Answer) applyOOBE(c rComp) error {
	if al := c.AutoLogon; al != nil {
		enabled, err := boolean("AutoLogon/Enabled", al.Enabled, false)
		if err != nil {
			return err
		}
		count := 1
		if strings.TrimSpace(al.LogonCount) != "" {
			if count, err = integer("AutoLogon/LogonCount", al.LogonCount); err != nil {
				return err
			}
		}
		pw, err := password("AutoLogon/Password", al.Password, "Password")
		if err != nil {
			return err
		}
		a.AutoLogon = &AutoLogon{Enabled: enabled, Username: strings.TrimSpace(al.Username), Password: pw, LogonCount: count}
	}
	if f := c.FirstLogonCommands; f != nil {
		cmds, err := commands(f.SynchronousCommand, false)
		if err != nil {
			return err
		}
		a.FirstLogonCommands = cmds
	}
	if ua := c.UserAccounts; ua != nil {
		if ua.AdministratorPassword != nil {
			pw, err := password("UserAccounts/AdministratorPassword", ua.AdministratorPassword, "AdministratorPassword")
			if err != nil {
				return err
			}
			a.Accounts = append(a.Accounts, Account{Name: "Administrator", Password: pw, Group: "Administrators", Builtin: true})
		}
		if ua.LocalAccounts != nil {
			for i, la := range ua.LocalAccounts.LocalAccount {
				pw, err := password(fmt.Sprintf("LocalAccounts/LocalAccount[%d]/Password", i+1), la.Password, "Password")
				if err != nil {
					return err
				}
				if strings.TrimSpace(la.Name) == "" {
					return fmt.Errorf("LocalAccounts/LocalAccount[%d]/Name is empty", i+1)
				}
				a.Accounts = append(a.Accounts, Account{Name: strings.TrimSpace(la.Name), Password: pw, Group: strings.TrimSpace(la.Group)})
			}
		}
	}
	return nil
}

func commands(in []rCommand, runSync bool) ([]Command, error) {
	var out []Command
	seen := map[int]bool{}
	for i, c := range in {
		order, err := integer(fmt.Sprintf("command[%d]/Order", i+1), c.Order)
		if err != nil {
			return nil, err
		}
		if seen[order] {
			return nil, fmt.Errorf("command[%d]/Order %d is used twice", i+1, order)
		}
		seen[order] = true
		line := c.CommandLine
		if runSync {
			line = c.Path
		}
		line = strings.TrimSpace(line)
		if line == "" {
			return nil, fmt.Errorf("command[%d] (Order %d) has no command line", i+1, order)
		}
		if len(line) > 1024 {
			return nil, fmt.Errorf("command[%d] (Order %d) is longer than 1024 characters", i+1, order)
		}
		out = append(out, Command{Order: order, CommandLine: line, Description: strings.TrimSpace(c.Description)})
	}
	sortBy(out, func(c Command) int { return c.Order })
	return out, nil
}

func integer(field, v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a number", field, v)
	}
	return n, nil
}

func boolean(field, v string, def bool) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "":
		return def, nil
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("%s: %q is neither true nor false", field, v)
}

// password decodes an answer-file password: PlainText, or base64 of the
// UTF-16LE password followed by suffix ("Password" or
// "AdministratorPassword"), as Windows SIM writes it.
func password(field string, p *rPassword, suffix string) (string, error) {
	if p == nil {
		return "", nil
	}
	plain, err := boolean(field+"/PlainText", p.PlainText, true)
	if err != nil {
		return "", err
	}
	if plain {
		return p.Value, nil
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(p.Value))
	if err != nil || len(raw)%2 != 0 {
		return "", fmt.Errorf("%s/Value is not a base64 UTF-16LE password (PlainText is false)", field)
	}
	u := make([]uint16, len(raw)/2)
	_ = binary.Read(bytes.NewReader(raw), binary.LittleEndian, u)
	s := string(utf16.Decode(u))
	if !strings.HasSuffix(s, suffix) {
		return "", fmt.Errorf("%s/Value does not end in the %q suffix Windows expects of an encoded password", field, suffix)
	}
	return strings.TrimSuffix(s, suffix), nil
}

func sortBy[T any](s []T, key func(T) int) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && key(s[j]) < key(s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
