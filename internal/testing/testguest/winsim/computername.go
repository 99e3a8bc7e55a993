package winsim

import (
	"fmt"
	"strings"
)

const (
	computerNameKey       = `HKLM\SYSTEM\CurrentControlSet\Control\ComputerName\ComputerName`
	activeComputerNameKey = `HKLM\SYSTEM\CurrentControlSet\Control\ComputerName\ActiveComputerName`
	tcpipParametersKey    = `HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters`
)

// SetComputerName is SetComputerNameEx(ComputerNamePhysicalDnsHostname):
// the new name is stored and becomes the active one (hostname,
// COMPUTERNAME) at the next boot.
func (m *Machine) SetComputerName(name string) error {
	if name == "" || len(name) > 63 || strings.ContainsAny(name, ` \/:*?"<>|.,~!@#$%^&'(){}_`) {
		return fmt.Errorf("computer name %q: %w", name, ErrorInvalidName)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setValueLocked(computerNameKey, RegValue{Name: "ComputerName", Type: RegSZ, String: strings.ToUpper(name)})
	m.setValueLocked(tcpipParametersKey, RegValue{Name: "NV Hostname", Type: RegSZ, String: name})
	return m.saveLocked()
}

// PendingComputerName is the name the next boot activates ("" when it is
// the active one).
func (m *Machine) PendingComputerName() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pendingComputerNameLocked()
}

func (m *Machine) pendingComputerNameLocked() string {
	hive, parts, _ := parseRegPath(tcpipParametersKey, "")
	k := m.regKeyLocked(hive, parts, false)
	if k == nil || k.Values["nv hostname"] == nil {
		return ""
	}
	next := k.Values["nv hostname"].String
	if next == "" || next == m.st.ComputerName {
		return ""
	}
	return next
}

// applyComputerNameLocked makes a pending computer name the active one, as
// a boot does.
func (m *Machine) applyComputerNameLocked() {
	next := m.pendingComputerNameLocked()
	if next == "" {
		return
	}
	m.st.ComputerName = next
	m.setValueLocked(activeComputerNameKey, RegValue{Name: "ComputerName", Type: RegSZ, String: strings.ToUpper(next)})
	m.setValueLocked(tcpipParametersKey, RegValue{Name: "Hostname", Type: RegSZ, String: next})
	for i, v := range m.st.SystemEnv {
		if v.Name == "COMPUTERNAME" {
			m.st.SystemEnv[i].Value = strings.ToUpper(next)
		}
	}
	_ = m.saveLocked()
}
