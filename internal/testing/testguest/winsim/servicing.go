package winsim

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Registry keys of the servicing stack.
const (
	cbsKey              = `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing`
	wuAUKey             = `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update`
	RebootPendingKey    = cbsKey + `\RebootPending`
	PackagesPendingKey  = cbsKey + `\PackagesPending`
	RebootInProgressKey = cbsKey + `\RebootInProgress`
	RebootRequiredKey   = wuAUKey + `\RebootRequired`
	cbsPackagesKey      = cbsKey + `\Packages`
)

// Exit codes of the servicing tools, as WinRM reports them.
const (
	ExitSuccess          uint32 = 0
	ExitRebootRequired   uint32 = 3010       // ERROR_SUCCESS_REBOOT_REQUIRED
	ExitAlreadyInstalled uint32 = 2359302    // WU_S_ALREADY_INSTALLED (wusa)
	ExitWUNotApplicable  uint32 = 2149842967 // WU_E_NOT_APPLICABLE 0x80240017 (wusa)
	ExitNotApplicable    uint32 = 2148468766 // CBS_E_NOT_APPLICABLE 0x800F081E (DISM)
	ExitNeedsNewerSSU    uint32 = 2148468771 // CBS_E_NEW_SERVICING_STACK_REQUIRED 0x800F0823
	ExitInstallersFailed uint32 = 2148469026 // CBS_E_INSTALLERS_FAILED 0x800F0922, default FailureCode
	ExitAccessDenied     uint32 = 5          // wusa over WinRM
)

// CBS package CurrentState values.
const (
	cbsStateInstallPending = 0x60
	cbsStateInstalled      = 0x70
)

// Result is what installing a package does once it is applicable.
type Result int

const (
	// Installs completes at once: exit 0.
	Installs Result = iota
	// InstallsRebootRequired stages the package: exit 3010, the pending
	// reboot keys are set, and the next reboot completes it.
	InstallsRebootRequired
	// NotApplicable is refused: DISM 0x800F081E, wusa 0x80240017.
	NotApplicable
)

// Package is an update package the simulated Windows knows.
type Package struct {
	// FileName is the file's name, .msu or .cab; the file is matched by
	// name, case-insensitively, wherever it is.
	FileName string
	// Identity is the CBS package identity DISM reports; default
	// Package_for_<KB>~31bf3856ad364e35~amd64~~10.0.1.0.
	Identity string
	// Contents are the files an .msu expands to (wusa /extract, expand
	// -F:*); default <name>.cab, WSUSSCAN.cab, <name>-pkgProperties.txt,
	// <name>.xml. A .cab among them that is not itself in the catalog
	// installs as this package; WSUSSCAN.cab never installs.
	Contents []string
	Result   Result
	// Preinstalled packages are part of the installed image.
	Preinstalled bool
	// RequiresSSU is the FileName of the servicing stack update that must
	// be installed first; until then the result is 0x800F0823.
	RequiresSSU string
	// Failures is how many attempts fail with FailureCode (default
	// 0x800F0922) before the package installs.
	Failures    int
	FailureCode uint32
	// SecondReboot: servicing continues on the next boot and restarts the
	// machine once more by itself (implies a reboot-required result).
	SecondReboot bool
	// InstallTime is how long the installing tool runs.
	InstallTime time.Duration
	// ShutdownServicing and BootServicing lengthen the shutdown and the
	// boot while the package is pending.
	ShutdownServicing time.Duration
	BootServicing     time.Duration
	// UBR, when set, becomes the Windows update build revision once the
	// package is installed.
	UBR int
	// RequiresIdentity is the identity of a package that must be installed
	// first (as RequiresSSU, for synthetic packages; see PackageSpec).
	RequiresIdentity string

	// archive is the file a synthetic .msu was read from: expand unpacks
	// its real members.
	archive string
	// wimLayout: a synthetic .msu whose payload is a .wim (Windows 11
	// 24H2 / Server 2025 cumulative updates); DISM adds the .msu itself.
	wimLayout bool
}

// InstalledPackage is a package in the servicing store.
type InstalledPackage struct {
	Identity string `json:"identity"`
	FileName string `json:"file_name"`
	// State is "Installed" or "Install Pending".
	State string `json:"state"`
	// RebootsLeft is how many boots the package still needs.
	RebootsLeft int       `json:"reboots_left,omitempty"`
	InstallTime time.Time `json:"install_time"`
}

const (
	pkgInstalled      = "Installed"
	pkgInstallPending = "Install Pending"
)

var kbPattern = regexp.MustCompile(`(?i)kb(\d+)`)

func normalizeCatalog(in []Package) ([]*Package, error) {
	var out []*Package
	seen := map[string]bool{}
	for i := range in {
		p := in[i]
		ext := strings.ToLower(path.Ext(p.FileName))
		if ext != ".msu" && ext != ".cab" || strings.ContainsAny(p.FileName, `\/`) {
			return nil, fmt.Errorf("winsim: package %q: FileName must be a .msu or .cab file name", p.FileName)
		}
		if seen[strings.ToLower(p.FileName)] {
			return nil, fmt.Errorf("winsim: package %q declared twice", p.FileName)
		}
		seen[strings.ToLower(p.FileName)] = true
		if p.Identity == "" {
			kb := "Update"
			if m := kbPattern.FindStringSubmatch(p.FileName); m != nil {
				kb = "KB" + m[1]
			}
			p.Identity = "Package_for_" + kb + "~31bf3856ad364e35~amd64~~10.0.1.0"
		}
		base := strings.TrimSuffix(p.FileName, p.FileName[len(p.FileName)-4:])
		if ext == ".msu" && p.Contents == nil {
			p.Contents = []string{base + ".cab", "WSUSSCAN.cab", base + "-pkgProperties.txt", base + ".xml"}
		}
		if ext == ".cab" && p.Contents != nil {
			return nil, fmt.Errorf("winsim: package %q: only an .msu has Contents", p.FileName)
		}
		if p.FailureCode == 0 {
			p.FailureCode = ExitInstallersFailed
		}
		if p.SecondReboot {
			p.Result = InstallsRebootRequired
		}
		out = append(out, &p)
	}
	for _, p := range out {
		if p.RequiresSSU != "" && !seen[strings.ToLower(p.RequiresSSU)] {
			return nil, fmt.Errorf("winsim: package %q requires %q, which is not in the catalog", p.FileName, p.RequiresSSU)
		}
	}
	return out, nil
}

// packageByFile finds the catalog package a file installs as.
func (m *Machine) packageByFile(name string) *Package {
	m.catalogMu.Lock()
	defer m.catalogMu.Unlock()
	for _, p := range m.catalog {
		if strings.EqualFold(p.FileName, name) {
			return p
		}
	}
	if strings.EqualFold(name, "WSUSSCAN.cab") || !strings.EqualFold(path.Ext(name), ".cab") {
		return nil
	}
	for _, p := range m.catalog {
		if p.archive != "" {
			continue // its cabs are read for what they are
		}
		for _, c := range p.Contents {
			if strings.EqualFold(c, name) {
				return p
			}
		}
	}
	return nil
}

func (m *Machine) packageByIdentity(id string) *Package {
	m.catalogMu.Lock()
	defer m.catalogMu.Unlock()
	for _, p := range m.catalog {
		if strings.EqualFold(p.Identity, id) {
			return p
		}
	}
	return nil
}

// Packages lists the servicing store, sorted by identity.
func (m *Machine) Packages() []InstalledPackage {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []InstalledPackage
	for _, p := range m.st.Packages {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Identity < out[j].Identity })
	return out
}

// PackageState is the state of the catalog package with that file name:
// "Installed", "Install Pending" or "" (not installed).
func (m *Machine) PackageState(fileName string) string {
	p := m.packageByFile(fileName)
	if p == nil {
		return ""
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.st.Packages[strings.ToLower(p.Identity)]; s != nil {
		return s.State
	}
	return ""
}

// RebootPending reports whether any of the pending-reboot keys exists.
func (m *Machine) RebootPending() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.keyExistsLocked(RebootPendingKey) || m.keyExistsLocked(PackagesPendingKey) || m.keyExistsLocked(RebootRequiredKey)
}

func (m *Machine) markInstalledLocked(p *Package, at time.Time) {
	m.st.Packages[strings.ToLower(p.Identity)] = &InstalledPackage{Identity: p.Identity, FileName: p.FileName, State: pkgInstalled, InstallTime: at}
	m.setValueLocked(cbsPackagesKey+`\`+p.Identity, RegValue{Name: "CurrentState", Type: RegDWORD, Number: cbsStateInstalled})
	if p.UBR != 0 && p.UBR > m.st.Windows.UBR {
		m.st.Windows.UBR = p.UBR
		m.setValueLocked(`HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion`, RegValue{Name: "UBR", Type: RegDWORD, Number: uint64(p.UBR)})
	}
}

func (m *Machine) markPendingLocked(p *Package, at time.Time) {
	reboots := 1
	if p.SecondReboot {
		reboots = 2
	}
	m.st.Packages[strings.ToLower(p.Identity)] = &InstalledPackage{Identity: p.Identity, FileName: p.FileName, State: pkgInstallPending, RebootsLeft: reboots, InstallTime: at}
	m.setValueLocked(cbsPackagesKey+`\`+p.Identity, RegValue{Name: "CurrentState", Type: RegDWORD, Number: cbsStateInstallPending})
	m.regKeyLocked(hklm, regParts(RebootPendingKey), true)
	m.regKeyLocked(hklm, regParts(PackagesPendingKey+`\`+p.Identity), true)
	m.regKeyLocked(hklm, regParts(RebootRequiredKey), true)
}

func regParts(key string) []string {
	_, parts, err := parseRegPath(key, "")
	if err != nil {
		panic(err)
	}
	return parts
}

func (m *Machine) anyPendingLocked() bool {
	for _, p := range m.st.Packages {
		if p.State == pkgInstallPending {
			return true
		}
	}
	return false
}

// clearPendingKeysLocked removes the pending-reboot keys unless a package
// is still pending.
func (m *Machine) clearPendingKeysLocked() bool {
	if m.anyPendingLocked() {
		return false
	}
	changed := false
	for _, k := range []string{RebootPendingKey, PackagesPendingKey, RebootRequiredKey, RebootInProgressKey} {
		if m.deleteKeyLocked(hklm, regParts(k)) {
			changed = true
		}
	}
	return changed
}

// shutdownServicingLocked is how long the shutdown services pending packages.
func (m *Machine) shutdownServicingLocked() time.Duration {
	var d time.Duration
	for _, s := range m.st.Packages {
		if p := m.packageByIdentity(s.Identity); p != nil && s.State == pkgInstallPending {
			d += p.ShutdownServicing
		}
	}
	return d
}

// bootServicingLocked runs at every boot: pending packages advance by one
// reboot. It reports how long servicing lengthens the boot, whether
// packages still need another reboot, and whether the pending keys are
// now due to be cleared.
func (m *Machine) bootServicingLocked(now time.Time) (d time.Duration, stillPending, clearKeys bool) {
	ids := make([]string, 0, len(m.st.Packages))
	for id := range m.st.Packages {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		s := m.st.Packages[id]
		if s.State != pkgInstallPending {
			continue
		}
		p := m.packageByIdentity(s.Identity)
		if p != nil {
			d += p.BootServicing
		}
		s.RebootsLeft--
		if s.RebootsLeft > 0 {
			continue
		}
		if p == nil {
			p = &Package{Identity: s.Identity, FileName: s.FileName}
		}
		m.markInstalledLocked(p, s.InstallTime)
		m.deleteKeyLocked(hklm, regParts(PackagesPendingKey+`\`+s.Identity))
	}
	stillPending = m.anyPendingLocked()
	clearKeys = !stillPending && (m.keyExistsLocked(RebootPendingKey) || m.keyExistsLocked(PackagesPendingKey) || m.keyExistsLocked(RebootRequiredKey))
	return d, stillPending, clearKeys
}

// servicingTool is who installs: DISM or wusa, which report the same
// outcomes with different codes.
type servicingTool int

const (
	toolDISM servicingTool = iota
	toolWUSA
)

// installPackage installs p and returns the tool's exit code. ok is false
// when the tool was killed before it finished.
// staged are the identities (lower-case) added earlier in the same DISM
// call: a checkpoint staged there satisfies its target's requirement.
func (m *Machine) installPackage(ctx context.Context, p *Package, tool servicingTool, staged map[string]bool) (code uint32, ok bool) {
	id := strings.ToLower(p.Identity)
	m.mu.Lock()
	if s := m.st.Packages[id]; s != nil {
		m.mu.Unlock()
		switch {
		case tool == toolWUSA:
			return ExitAlreadyInstalled, true
		case s.State == pkgInstallPending:
			return ExitRebootRequired, true
		default:
			return ExitSuccess, true
		}
	}
	if p.Result == NotApplicable {
		m.mu.Unlock()
		if tool == toolWUSA {
			return ExitWUNotApplicable, true
		}
		return ExitNotApplicable, true
	}
	if p.RequiresSSU != "" {
		ssu := m.packageByFile(p.RequiresSSU)
		if m.st.Packages[strings.ToLower(ssu.Identity)] == nil {
			m.mu.Unlock()
			return ExitNeedsNewerSSU, true
		}
	}
	if p.RequiresIdentity != "" {
		if s := m.st.Packages[strings.ToLower(p.RequiresIdentity)]; (s == nil || s.State != pkgInstalled) && !staged[strings.ToLower(p.RequiresIdentity)] {
			m.mu.Unlock()
			return ExitNeedsNewerSSU, true
		}
	}
	m.mu.Unlock()
	if err := sleep(ctx, m.clock, p.InstallTime); err != nil {
		return 1, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.st.Failures[id] < p.Failures {
		m.st.Failures[id]++
		m.saveOrReportLocked("a failed package install")
		return p.FailureCode, true
	}
	now := m.clock.Now()
	switch p.Result {
	case InstallsRebootRequired:
		m.markPendingLocked(p, now)
		code = ExitRebootRequired
	default:
		m.markInstalledLocked(p, now)
		code = ExitSuccess
	}
	m.saveOrReportLocked("a package install")
	return code, true
}

// extractPackage writes an .msu's contents into dir (wusa /extract,
// expand -F:*) and returns the written paths.
func (m *Machine) extractPackage(p *Package, dir string, fsys *Files) ([]string, error) {
	if p.archive != "" {
		return m.extractArchive(p.archive, dir, fsys)
	}
	abs, err := fsys.Abs(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range p.Contents {
		dst := strings.TrimSuffix(abs, `\`) + `\` + c
		var data []byte
		if strings.EqualFold(path.Ext(c), ".cab") {
			data = []byte("MSCF\x00\x00\x00\x00winsim cabinet " + c + " of " + p.Identity + "\n")
		} else {
			data = []byte("winsim " + c + " of " + p.Identity + "\r\n")
		}
		w, err := fsys.CreateNew(dst)
		if err != nil {
			return out, err
		}
		_, err = w.Write(data)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return out, err
		}
		out = append(out, dst)
	}
	return out, nil
}
