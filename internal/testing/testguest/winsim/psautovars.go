package winsim

import (
	"fmt"
	"strings"
	"sync/atomic"
)

// PowerShell's automatic and preference variables, as Windows PowerShell
// 5.1 on Windows Server 2022 has them: Microsoft's about_Automatic_Variables
// and about_Preference_Variables for PowerShell 5.1
// (learn.microsoft.com/powershell/module/microsoft.powershell.core/about/
// about_automatic_variables?view=powershell-5.1, and
// .../about_preference_variables?view=powershell-5.1), and $PSVersionTable
// as captured on Server 2022 (below).
//
// A variable read is answered from, in this order: what the script
// assigned; the variables modelled here; the PowerShell 6+ variables that
// 5.1 does not define ($IsWindows and kin: $null, deliberately); $null for
// a variable the script assigns somewhere else (not yet, or on a branch not
// taken: PowerShell without strict mode reads an unset variable as $null).
// Any other name is a variable that Windows would provide ($MyInvocation,
// $PSScriptRoot, $Error, $_, ...) or that does not exist, which the model
// cannot tell apart: it is reported like an unknown command, never read
// as a silent $null. $env: reads the process's environment block, which is
// modelled from a capture (test_winrs_environment.yml): a name not in it
// is unset on Windows too, and reads as $null.

// psPreferenceDefaults are the preference variables' defaults in
// Windows PowerShell 5.1 (about_Preference_Variables).
var psPreferenceDefaults = map[string]any{
	"confirmpreference":     "High",
	"debugpreference":       "SilentlyContinue",
	"erroractionpreference": "Continue",
	"informationpreference": "SilentlyContinue",
	"progresspreference":    "Continue",
	"verbosepreference":     "SilentlyContinue",
	"warningpreference":     "Continue",
	"whatifpreference":      false,
}

// psUndefinedIn51 are automatic variables PowerShell 6 introduced; Windows
// PowerShell 5.1 does not define them, so they read as $null there
// (about_Automatic_Variables: "$IsWindows ... PowerShell 6.0 and later").
// Scripts test them to tell Windows PowerShell from PowerShell 7, so they
// are modelled as absent rather than reported.
var psUndefinedIn51 = map[string]bool{
	"iswindows": true, "islinux": true, "ismacos": true, "iscoreclr": true,
}

// psNextPID numbers powershell.exe processes for $PID: multiples of 4 as
// Windows assigns process IDs, above the range of boot-time processes.
var psNextPID atomic.Int64

func init() { psNextPID.Store(4096) }

func newPSPID() int64 { return psNextPID.Add(4) }

// psVersion is a System.Version.
type psVersion struct {
	major, minor, build, revision int64 // build and revision -1 when absent
}

func newPSVersion(parts ...int64) *psVersion {
	v := &psVersion{build: -1, revision: -1}
	v.major, v.minor = parts[0], parts[1]
	if len(parts) > 2 {
		v.build = parts[2]
	}
	if len(parts) > 3 {
		v.revision = parts[3]
	}
	return v
}

// String is Version.ToString(): the components that are defined.
func (v *psVersion) String() string {
	s := fmt.Sprintf("%d.%d", v.major, v.minor)
	if v.build >= 0 {
		s += fmt.Sprintf(".%d", v.build)
		if v.revision >= 0 {
			s += fmt.Sprintf(".%d", v.revision)
		}
	}
	return s
}

func (v *psVersion) psProperty(name string) (any, bool) {
	switch name {
	case "major":
		return v.major, true
	case "minor":
		return v.minor, true
	case "build":
		return v.build, true
	case "revision":
		return v.revision, true
	}
	return nil, false
}

func (*psVersion) typeName() string { return "System.Version" }

// psVersionTable is $PSVersionTable of Windows PowerShell 5.1 on the
// machine's Windows. Captures from Windows Server 2022 show PSVersion
// 5.1.<build>.<UBR> and BuildVersion 10.0.<build>.<UBR> with the same
// revision as the OS (5.1.20348.558/10.0.20348.558, 5.1.20348.1366/
// 10.0.20348.1366, 5.1.20348.2700/10.0.20348.2700), PSEdition Desktop,
// PSCompatibleVersions {1.0, 2.0, 3.0, 4.0...}, CLRVersion
// 4.0.30319.42000, WSManStackVersion 3.0, PSRemotingProtocolVersion 2.3,
// SerializationVersion 1.1.0.1.
type psVersionTable struct {
	windows Windows
}

func (t *psVersionTable) psVersion() *psVersion {
	return newPSVersion(5, 1, int64(t.windows.Build), int64(t.windows.UBR))
}

func (t *psVersionTable) psProperty(name string) (any, bool) {
	switch name {
	case "psversion":
		return t.psVersion(), true
	case "psedition":
		return "Desktop", true
	case "pscompatibleversions":
		return []any{newPSVersion(1, 0), newPSVersion(2, 0), newPSVersion(3, 0), newPSVersion(4, 0), newPSVersion(5, 0), t.psVersion()}, true
	case "buildversion":
		return newPSVersion(10, 0, int64(t.windows.Build), int64(t.windows.UBR)), true
	case "clrversion":
		return newPSVersion(4, 0, 30319, 42000), true
	case "wsmanstackversion":
		return newPSVersion(3, 0), true
	case "psremotingprotocolversion":
		return newPSVersion(2, 3), true
	case "serializationversion":
		return newPSVersion(1, 1, 0, 1), true
	case "count":
		return int64(8), true // a Hashtable of the eight entries above
	}
	return nil, false
}

func (*psVersionTable) typeName() string { return "System.Management.Automation.PSVersionHashTable" }

// String is what PowerShell prints for "$PSVersionTable".
func (t *psVersionTable) String() string { return t.typeName() }

// psHost is $Host. powershell.exe started over WinRM (winrs runs it through
// cmd.exe, as masterzen's and pywinrm's run_ps do) is a console
// application, so its host is ConsoleHost; ServerRemoteHost is the host of
// a PowerShell remoting session (wsmprovhost.exe), which is not modelled.
// Its Version is the PowerShell version.
type psHost struct {
	version *psVersion
}

func (h *psHost) psProperty(name string) (any, bool) {
	switch name {
	case "name":
		return "ConsoleHost", true
	case "version":
		return h.version, true
	}
	return nil, false
}

func (*psHost) typeName() string {
	return "System.Management.Automation.Internal.Host.InternalHost"
}

// String is what PowerShell prints for "$Host".
func (*psHost) String() string {
	return "System.Management.Automation.Internal.Host.InternalHost"
}

// psStructured is an object whose PowerShell formatting for the host (a
// table or list) and whose comparisons the stand-in does not model.
type psStructured interface {
	psObject
	typeName() string
}

// automaticVar returns a modelled automatic variable; ok is false for any
// other name. n is lower case, without scope.
func (rt *psRuntime) automaticVar(n string) (v any, ok bool) {
	if v, ok := psPreferenceDefaults[n]; ok {
		return v, true
	}
	switch n {
	case "true":
		return true, true
	case "false":
		return false, true
	case "null":
		return nil, true
	case "?":
		return rt.lastOK, true
	case "lastexitcode":
		// No native program has run yet: the variable does not exist and
		// reads as $null.
		if rt.lastExit == nil {
			return nil, true
		}
		return *rt.lastExit, true
	case "pwd":
		return &psPathInfo{path: rt.cwd}, true
	case "home":
		v, _ := rt.p.env.get("USERPROFILE")
		return v, true
	case "pshome":
		return `C:\Windows\System32\WindowsPowerShell\v1.0`, true
	case "pid":
		return rt.pid, true
	case "psversiontable":
		return &psVersionTable{windows: rt.m.WindowsVersion()}, true
	case "host":
		return &psHost{version: (&psVersionTable{windows: rt.m.WindowsVersion()}).psVersion()}, true
	case "shellid":
		return "Microsoft.PowerShell", true
	}
	if psUndefinedIn51[n] {
		return nil, true
	}
	return nil, false
}

// psAssignedNames lists, lower case and without scope, the variables a
// script assigns anywhere, branches not taken included.
func psAssignedNames(stmts []psStmt) map[string]bool {
	names := map[string]bool{}
	var stmt func(s psStmt)
	var pipe func(p *psPipeline)
	var expr func(x psExpr)
	stmtList := func(list []psStmt) {
		for _, s := range list {
			stmt(s)
		}
	}
	pipe = func(p *psPipeline) {
		if p == nil {
			return
		}
		for _, e := range p.elems {
			expr(e.expr)
			expr(e.call)
			for _, a := range e.args {
				expr(a.value)
			}
		}
	}
	expr = func(x psExpr) {
		switch x := x.(type) {
		case *psExpand:
			for _, part := range x.parts {
				stmtList(part.sub)
			}
		case *psParen:
			pipe(x.pipe)
		case *psSubExpr:
			stmtList(x.stmts)
		case *psArray:
			for _, it := range x.items {
				expr(it)
			}
		case *psUnary:
			expr(x.x)
		case *psBinary:
			expr(x.l)
			expr(x.r)
		case *psMember:
			expr(x.target)
			for _, a := range x.args {
				expr(a)
			}
		case *psStatic:
			for _, a := range x.args {
				expr(a)
			}
		}
	}
	stmt = func(s psStmt) {
		switch s := s.(type) {
		case *psAssign:
			names[psVarKey(s.name)] = true
			pipe(s.value)
		case *psPipeline:
			pipe(s)
		case *psIf:
			for _, c := range s.conds {
				pipe(c)
			}
			for _, b := range s.bodies {
				stmtList(b)
			}
			stmtList(s.elseDo)
		case *psExitStmt:
			pipe(s.value)
		case *psThrowStmt:
			pipe(s.value)
		}
	}
	stmtList(stmts)
	return names
}

// psVarKey is a variable name lower case, without its scope.
func psVarKey(name string) string {
	n := strings.ToLower(name)
	for _, scope := range []string{"global:", "script:", "local:", "private:", "variable:"} {
		n = strings.TrimPrefix(n, scope)
	}
	return n
}
