package winsim

import (
	"fmt"
	"sort"
	"strings"
)

// Local accounts beyond Options.Users: the ones a program on the machine
// creates (cloudbase-init's CreateUserPlugin). Windows keeps them in the
// SAM; the stand-in keeps their names, groups and password flags in its
// state (never the password: WinRM's accounts are the server's).
//
// net.exe answers `net user` (the list) and `net user <name>` (one
// account, exit 2 with NERR_UserNotFound for an unknown one), as an
// account's existence is checked on Windows.

const netPath = `C:\Windows\System32\net.exe`

var _ = func() bool { builtinPrograms = append(builtinPrograms, netPath); return true }()

// LocalAccount is a local user the machine holds.
type LocalAccount struct {
	Name   string   `json:"name"`
	Groups []string `json:"groups"`
	// MustChangePassword: the password expires at the next logon
	// ("User must change password at next logon").
	MustChangePassword bool `json:"must_change_password"`
}

// LocalAccounts lists the accounts created on the machine, by name.
func (m *Machine) LocalAccounts() []LocalAccount {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := append([]LocalAccount(nil), m.st.Accounts...)
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].Name) < strings.ToLower(out[j].Name) })
	return out
}

// userExists reports whether name is one of Options.Users or a created
// account.
func (m *Machine) userExists(name string) (string, bool) {
	if n, ok := m.knownUser(name); ok {
		return n, true
	}
	name = userName(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range m.st.Accounts {
		if strings.EqualFold(a.Name, name) {
			return a.Name, true
		}
	}
	return name, false
}

// createAccount adds a local account (no-op for an existing one).
func (m *Machine) createAccount(name string) error {
	if _, ok := m.userExists(name); ok {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.st.Accounts = append(m.st.Accounts, LocalAccount{Name: name})
	return m.saveLocked()
}

// updateAccount changes a created account's record.
func (m *Machine) updateAccount(name string, change func(a *LocalAccount)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.st.Accounts {
		if strings.EqualFold(m.st.Accounts[i].Name, name) {
			change(&m.st.Accounts[i])
			return m.saveLocked()
		}
	}
	return fmt.Errorf("account %s: %w", name, ErrorNoSuchUser)
}

// runNet is net.exe: `net user` and `net user <name>`.
func (m *Machine) runNet(p *proc) uint32 {
	if len(p.args) == 0 || !strings.EqualFold(p.args[0], "user") || len(p.args) > 2 {
		m.unsupportedf("net.exe %q (only `net user [name]` is modelled)", p.args)
		p.print(p.stderr, "The syntax of this command is:\r\n\r\nNET\r\n    [ ACCOUNTS | COMPUTER | CONFIG | CONTINUE | FILE | GROUP | HELP |\r\n      HELPMSG | LOCALGROUP | PAUSE | SESSION | SHARE | START |\r\n      STATISTICS | STOP | TIME | USE | USER | VIEW ]\r\n\r\n")
		return 1
	}
	name := strings.ToUpper(m.ComputerName())
	if len(p.args) == 1 {
		names := append([]string(nil), m.opts.Users...)
		for _, a := range m.LocalAccounts() {
			names = append(names, a.Name)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "\r\nUser accounts for \\\\%s\r\n\r\n-------------------------------------------------------------------------------\r\n", name)
		for i, n := range names {
			fmt.Fprintf(&b, "%-25s", n)
			if i%3 == 2 || i == len(names)-1 {
				b.WriteString("\r\n")
			}
		}
		b.WriteString("The command completed successfully.\r\n\r\n")
		p.print(p.stdout, b.String())
		return 0
	}
	user, ok := m.userExists(p.args[1])
	if !ok {
		p.print(p.stderr, "The user name could not be found.\r\n\r\nMore help is available by typing NET HELPMSG 2221.\r\n\r\n")
		return 2
	}
	var acct LocalAccount
	for _, a := range m.LocalAccounts() {
		if strings.EqualFold(a.Name, user) {
			acct = a
		}
	}
	groups := "*Users"
	if len(acct.Groups) > 0 {
		groups = "*" + strings.Join(acct.Groups, " *")
	}
	expires := "Never"
	if acct.MustChangePassword {
		expires = "Now"
	}
	p.print(p.stdout, fmt.Sprintf("User name                    %s\r\nFull Name                    \r\nComment                      \r\n"+
		"Account active               Yes\r\nAccount expires              Never\r\n\r\nPassword expires             %s\r\n"+
		"User may change password     Yes\r\n\r\nLocal Group Memberships      %s\r\nGlobal Group memberships     *None\r\n"+
		"The command completed successfully.\r\n\r\n", user, expires, groups))
	return 0
}
