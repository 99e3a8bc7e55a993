package winsim

import (
	"fmt"
	"strings"
)

const regPath = `C:\Windows\System32\reg.exe`

var _ = func() bool { builtinPrograms = append(builtinPrograms, regPath); return true }()

// regHiveNames are the full names reg.exe prints.
var regHiveNames = map[string]string{
	"HKLM": "HKEY_LOCAL_MACHINE", "HKEY_LOCAL_MACHINE": "HKEY_LOCAL_MACHINE",
	"HKCU": "HKEY_CURRENT_USER", "HKEY_CURRENT_USER": "HKEY_CURRENT_USER",
	"HKU": "HKEY_USERS", "HKEY_USERS": "HKEY_USERS",
}

// runReg is reg.exe `query <key> /v <name>`: the value as reg prints it
// (REG_DWORD in hex), or "ERROR: The system was unable to find the
// specified registry key or value." and exit 1.
func (m *Machine) runReg(p *proc) uint32 {
	args := p.args
	if len(args) != 4 || !strings.EqualFold(args[0], "query") || !strings.EqualFold(args[2], "/v") {
		m.unsupportedf("reg.exe %q (only `reg query <key> /v <name>` is modelled)", args)
		p.print(p.stderr, "ERROR: Invalid syntax.\r\nType \"REG QUERY /?\" for usage.\r\n")
		return 1
	}
	key, name := strings.Trim(args[1], `"`), args[3]
	hive, rest, _ := strings.Cut(key, `\`)
	full, ok := regHiveNames[strings.ToUpper(hive)]
	if !ok {
		p.print(p.stderr, "ERROR: Invalid key name.\r\nType \"REG QUERY /?\" for usage.\r\n")
		return 1
	}
	v, found, err := m.RegistryFor(p.user).Value(key, name)
	if err != nil || !found {
		p.print(p.stderr, "ERROR: The system was unable to find the specified registry key or value.\r\n")
		return 1
	}
	var data string
	switch v.Type {
	case RegSZ, RegExpandSZ:
		data = v.String
	case RegDWORD, RegQWORD:
		data = fmt.Sprintf("0x%x", v.Number)
	case RegMultiSZ:
		data = strings.Join(v.Strings, `\0`)
	default:
		m.unsupportedf("reg query of a %s value", v.Type)
		return 1
	}
	p.print(p.stdout, fmt.Sprintf("\r\n%s\\%s\r\n    %s    %s    %s\r\n\r\n", full, rest, v.Name, v.Type, data))
	return 0
}
