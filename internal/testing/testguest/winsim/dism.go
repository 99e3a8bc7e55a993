package winsim

import (
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
)

// dismMessages are the texts DISM prints for its error codes.
var dismMessages = map[uint32]string{
	ExitNotApplicable:    "The specified package is not applicable to this image.",
	ExitNeedsNewerSSU:    "The package requires a newer version of the servicing stack.",
	ExitInstallersFailed: "One or more installers failed to install.",
	2:                    "The system cannot find the file specified.",
	3:                    "The system cannot find the path specified.",
}

const dismLog = `C:\Windows\Logs\DISM\dism.log`

// runDISM is C:\Windows\System32\dism.exe.
func (m *Machine) runDISM(p *proc) uint32 {
	args, unknown := parseDISMArgs(p.args)
	if unknown != "" {
		return m.dismUnknown(p, unknown)
	}
	if !args.online || args.add == args.list || args.add && len(args.paths) == 0 || args.list && len(args.paths) > 0 {
		return m.dismUnknown(p, strings.Join(p.args, " "))
	}
	_ = args.noRestart // the stand-in never restarts on its own from DISM
	d := &dismRun{m: m, p: p, out: p.stdout, logPath: args.logPath}
	if args.quiet {
		d.out = io.Discard
	}
	w := m.WindowsVersion()
	fmt.Fprintf(d.out, "\r\nDeployment Image Servicing and Management tool\r\nVersion: 10.0.%d.1\r\n\r\nImage Version: %s\r\n\r\n", w.Build, w.Version())
	if args.list {
		return d.getPackages()
	}
	files, code := d.resolvePackagePaths(args.paths)
	if code != 0 {
		return code
	}
	pkgs, files, code := d.packagesOf(files)
	if code != 0 {
		return code
	}
	return d.addPackages(pkgs, files)
}

// dismArgs are the dism.exe options the stand-in models.
type dismArgs struct {
	online, add, list, noRestart, quiet bool
	paths                               []string
	logPath                             string
}

// parseDISMArgs reads dism.exe's options; unknown is the first one it does
// not model.
func parseDISMArgs(args []string) (d dismArgs, unknown string) {
	d.logPath = dismLog
	for _, a := range args {
		la := strings.ToLower(a)
		switch {
		case la == "/online":
			d.online = true
		case la == "/add-package":
			d.add = true
		case la == "/get-packages":
			d.list = true
		case la == "/norestart":
			d.noRestart = true
		case la == "/quiet":
			d.quiet = true
		case la == "/english":
		case strings.HasPrefix(la, "/packagepath:"):
			d.paths = append(d.paths, a[len("/packagepath:"):])
		case strings.HasPrefix(la, "/logpath:"):
			d.logPath = a[len("/logpath:"):]
		case strings.HasPrefix(la, "/loglevel:"):
		default:
			return d, a
		}
	}
	return d, ""
}

// dismRun is one run of dism.exe: where its output and its log go.
type dismRun struct {
	m       *Machine
	p       *proc
	out     io.Writer // stdout, or nothing with /Quiet
	logPath string
}

func (d *dismRun) logf(format string, args ...any) {
	if lw, err := d.p.files.Append(d.logPath); err == nil {
		fmt.Fprintf(lw, "%s Info DISM "+format+"\r\n", append([]any{d.m.clock.Now().Format("2006-01-02 15:04:05")}, args...)...)
		lw.Close()
	}
}

// fail prints DISM's error report (also with /Quiet) and returns the code.
func (d *dismRun) fail(code uint32, detail string) uint32 {
	fmt.Fprintf(d.p.stdout, "%s\r\nError: %s\r\n\r\n%s\r\n\r\nThe DISM log file can be found at %s\r\n", detail, dismCode(code), dismMessages[code], d.logPath)
	d.logf("failed: %s", dismCode(code))
	return code
}

// getPackages is /Get-Packages.
func (d *dismRun) getPackages() uint32 {
	fmt.Fprintf(d.out, "Packages listing:\r\n\r\n")
	for _, s := range d.m.Packages() {
		fmt.Fprintf(d.out, "Package Identity : %s\r\nState : %s\r\nRelease Type : Update\r\nInstall Time : %s\r\n\r\n", s.Identity, s.State, s.InstallTime.Format("1/2/2006 3:04 PM"))
	}
	fmt.Fprintf(d.out, "The operation completed successfully.\r\n")
	d.logf("Get-Packages")
	return 0
}

// resolvePackagePaths resolves the /PackagePath values; a directory adds
// its .cab files, recursively. A non-zero code is DISM's exit code.
func (d *dismRun) resolvePackagePaths(paths []string) ([]string, uint32) {
	p := d.p
	var files []string
	for _, pp := range paths {
		exists, dir := p.files.exists(pp)
		abs, _ := p.files.Abs(pp)
		switch {
		case !exists:
			return nil, d.fail(2, fmt.Sprintf("An error occurred trying to open - %s Error: 0x80070002\r\n", pp))
		case dir:
			all, err := p.files.walkFiles(abs)
			if err != nil {
				return nil, d.fail(3, err.Error())
			}
			for _, f := range all {
				if strings.EqualFold(path.Ext(f), ".cab") {
					files = append(files, f)
				}
			}
		default:
			files = append(files, abs)
		}
	}
	return files, 0
}

// packagesOf finds the packages of the files, each 24H2-layout .msu
// preceded by the checkpoint cumulative updates it needs, and returns them
// with their files. A non-zero code is DISM's exit code.
func (d *dismRun) packagesOf(files []string) ([]*Package, []string, uint32) {
	m, p := d.m, d.p
	var pkgs []*Package
	var pkgFiles []string
	for _, f := range files {
		name := f[strings.LastIndexByte(f, '\\')+1:]
		pkg := m.packageForFile(p.files, f)
		if strings.EqualFold(path.Ext(name), ".msu") && (pkg == nil || !pkg.wimLayout) {
			m.unsupportedf("dism /Online /Add-Package with an .msu (%s) holding .cab files: whether DISM accepts it online is unverified; expand it and add the .cab", f)
			return nil, nil, d.fail(ExitNotApplicable, fmt.Sprintf("An error occurred trying to open - %s Error: 0x800f081e\r\n", f))
		}
		if pkg == nil {
			m.unsupportedf("dism /Add-Package of %s: the package is not in the catalog and not a synthetic package", f)
			return nil, nil, d.fail(2, fmt.Sprintf("An error occurred trying to open - %s Error: 0x80070002\r\n", f))
		}
		if pkg.wimLayout {
			// Pointed at the target, DISM takes the checkpoint
			// cumulative updates it needs from the target's folder.
			cps, cpFiles := m.checkpointsFor(p.files, f, pkg)
			pkgs, pkgFiles = append(pkgs, cps...), append(pkgFiles, cpFiles...)
		}
		pkgs, pkgFiles = append(pkgs, pkg), append(pkgFiles, f)
	}
	return pkgs, pkgFiles, 0
}

// addPackages is /Add-Package of the packages, in order.
func (d *dismRun) addPackages(pkgs []*Package, files []string) uint32 {
	result := ExitSuccess
	staged := map[string]bool{}
	for i, pkg := range pkgs {
		fmt.Fprintf(d.out, "Processing %d of %d - Adding package %s\r\n", i+1, len(pkgs), pkg.Identity)
		code, ok := d.m.installPackage(d.p.ctx, pkg, toolDISM, staged)
		if !ok {
			return 1
		}
		fmt.Fprintf(d.out, "[==========================100.0%%==========================]\r\n")
		d.logf("Add-Package %s (%s): %s", pkg.Identity, files[i], dismCode(code))
		staged[strings.ToLower(pkg.Identity)] = true
		switch code {
		case ExitSuccess:
		case ExitRebootRequired:
			result = ExitRebootRequired
		default:
			return d.fail(code, fmt.Sprintf("An error occurred - %s Error: %s\r\n", pkg.Identity, dismCode(code)))
		}
	}
	fmt.Fprintf(d.out, "The operation completed successfully.\r\n")
	if result == ExitRebootRequired {
		fmt.Fprintf(d.out, "Restart Windows to complete this operation.\r\n")
	}
	return result
}

// checkpointsFor lists the checkpoint cumulative updates DISM adds before
// target (a 24H2-layout .msu at targetPath): the 24H2-layout .msu files in
// the target's folder of the same package with a lower version that the
// machine is not already at or past, oldest first.
func (m *Machine) checkpointsFor(files *Files, targetPath string, target *Package) ([]*Package, []string) {
	dir := targetPath[:strings.LastIndexByte(targetPath, '\\')]
	entries, err := files.ReadDir(dir)
	if err != nil {
		return nil, nil
	}
	name, version := splitIdentity(target.Identity)
	type checkpoint struct {
		pkg     *Package
		path    string
		version string
	}
	var found []checkpoint
	for _, e := range entries {
		if e.IsDir() || !strings.EqualFold(path.Ext(e.Name()), ".msu") || strings.EqualFold(dir+`\`+e.Name(), targetPath) {
			continue
		}
		f := dir + `\` + e.Name()
		cp := m.packageForFile(files, f)
		if cp == nil || !cp.wimLayout {
			continue
		}
		cpName, cpVersion := splitIdentity(cp.Identity)
		if !strings.EqualFold(cpName, name) || !versionLess(cpVersion, version) || m.atOrPast(cpName, cpVersion) {
			continue
		}
		found = append(found, checkpoint{cp, f, cpVersion})
	}
	sort.SliceStable(found, func(i, j int) bool { return versionLess(found[i].version, found[j].version) })
	var out []*Package
	var paths []string
	for _, c := range found {
		out, paths = append(out, c.pkg), append(paths, c.path)
	}
	return out, paths
}

// atOrPast reports whether a package of this name at version or later is
// installed or pending.
func (m *Machine) atOrPast(name, version string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.st.Packages {
		n, v := splitIdentity(s.Identity)
		if strings.EqualFold(n, name) && !versionLess(v, version) {
			return true
		}
	}
	return false
}

// splitIdentity splits a CBS identity name~token~arch~lang~version.
func splitIdentity(id string) (name, version string) {
	parts := strings.Split(id, "~")
	return parts[0], parts[len(parts)-1]
}

// versionLess compares dotted versions numerically.
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

func dismCode(code uint32) string {
	if code < 0x10000 {
		return fmt.Sprint(code)
	}
	return fmt.Sprintf("0x%08x", code)
}

func (m *Machine) dismUnknown(p *proc, what string) uint32 {
	m.unsupportedf("dism.exe arguments not understood: %q (in %q)", what, strings.Join(p.args, " "))
	fmt.Fprintf(p.stdout, "\r\nDeployment Image Servicing and Management tool\r\nVersion: 10.0.%d.1\r\n\r\n\r\nError: 87\r\n\r\nThe %s option is unknown.\r\nFor more information, refer to the help by running DISM.exe /?.\r\n\r\nThe DISM log file can be found at %s\r\n", m.WindowsVersion().Build, what, dismLog)
	return 87
}
