// Command winbake-demo makes the inputs of `make demo` and prints its
// summary (scripts/demo.sh runs it):
//
//	winbake-demo inputs DIR
//	    writes the stand-in's update packages to DIR/updates (a servicing
//	    stack, a cumulative update that needs a reboot, a package that does
//	    not apply) and its cloudbase-init installer to
//	    DIR/CloudbaseInitSetup_Stable_x64.msi
//	winbake-demo summary BUILD_LOG OUTPUT_DIR
//	    reads the timestamped build output (packer build -timestamp-ui) and
//	    what the build left in OUTPUT_DIR, and prints each stage and its
//	    time, the image sizes, the updates installed, the verification
//	    checks and the Glance image ID
//
// The inputs are made here rather than shipped: real cabinets with the
// metadata of Microsoft's packages, which the stand-in installs as their
// embedded specification says.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/image"
	"github.com/winbake/packer-plugin-winbake/internal/progress"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
	"github.com/winbake/packer-plugin-winbake/post-processor/verify"
)

func main() {
	var err error
	switch {
	case len(os.Args) == 3 && os.Args[1] == "inputs":
		err = writeInputs(os.Args[2])
	case len(os.Args) == 4 && os.Args[1] == "summary":
		err = printSummary(os.Args[2], os.Args[3])
	default:
		err = fmt.Errorf("usage: winbake-demo inputs DIR | winbake-demo summary BUILD_LOG OUTPUT_DIR")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "winbake-demo:", err)
		os.Exit(1)
	}
}

// demoPackages are the updates the demo installs, in the order Windows
// Update would need them: the cumulative update requires the servicing
// stack and a reboot; KB5000011 does not apply to the image.
func demoPackages() []testguest.PackageFile {
	ssu := testguest.PackageFile{Name: "ssu-20348.2700-x64.cab", KB: "5044415", PackageName: "Package_for_ServicingStack_2700",
		Version: "20348.2700.1.0", Spec: winsim.PackageSpec{Result: "installs"}}
	return []testguest.PackageFile{
		ssu,
		{Name: "windows10.0-kb5044281-x64.msu", KB: "5044281", PackageName: "Package_for_RollupFix", Version: "20348.2762.1.8",
			ProductName: "Windows Server 2022", AppliesTo: "Security Updates", Padding: 8 << 20,
			Spec: winsim.PackageSpec{Result: "reboot_required", Requires: ssu.Identity(), UBR: 2762}},
		{Name: "windows10.0-kb5000011-x64.cab", KB: "5000011", PackageName: "Package_for_KB5000011", Version: "10.0.1.0",
			Spec: winsim.PackageSpec{Result: "not_applicable"}},
	}
}

// cloudbaseInitMSI is the stand-in's cloudbase-init installer: its msiexec
// installs cloudbase-init from any non-empty CloudbaseInitSetup*.msi.
const cloudbaseInitMSI = "CloudbaseInitSetup_Stable_x64.msi"

func writeInputs(dir string) error {
	updates := filepath.Join(dir, "updates")
	if err := os.MkdirAll(updates, 0o755); err != nil {
		return err
	}
	for _, p := range demoPackages() {
		b, err := p.Build()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(updates, p.Name), b, 0o644); err != nil {
			return err
		}
	}
	msi := []byte("winbake stand-in: the cloudbase-init installer the stand-in's msiexec installs\n")
	return os.WriteFile(filepath.Join(dir, cloudbaseInitMSI), msi, 0o644)
}

// stage is one part of the build, from the first line that starts it.
type stage struct {
	name  string
	start time.Time
}

var (
	ansiRE          = regexp.MustCompile("\x1b\\[[0-9;]*m")
	timestampRE     = regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:Z|[+-]\d\d:\d\d)): (.*)$`)
	postProcessorRE = regexp.MustCompile(`Running post-processor:.*\(type ([a-z-]+)\)|Running post-processor: ([a-z-]+)$`)
	finishedRE      = regexp.MustCompile(`Build '.*' finished after`)
	rebootsRE       = regexp.MustCompile(`winbake-updates summary \((\d+) reboot\(s\) started`)
)

// stageNames says what each post-processor's stage does.
var stageNames = map[string]string{
	"winbake-sysprep":  "sysprep with cloudbase-init",
	"winbake-compress": "compress to qcow2 and dd.gz",
	"winbake-verify":   "first boot checked",
	"winbake-glance":   "published to Glance",
}

// stagesOf reads the stages from Packer's timestamped output.
func stagesOf(logPath string) (stages []stage, end time.Time, reboots string, err error) {
	f, err := os.Open(logPath)
	if err != nil {
		return nil, end, "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		m := timestampRE.FindStringSubmatch(ansiRE.ReplaceAllString(s.Text(), ""))
		if m == nil {
			continue
		}
		t, err := time.Parse(time.RFC3339, m[1])
		if err != nil {
			continue
		}
		line := m[2]
		switch {
		case len(stages) == 0:
			stages = append(stages, stage{"install (winbake-qemu)", t})
		case strings.Contains(line, "winbake-updates: ") && strings.Contains(line, "package(s), in install order"):
			stages = append(stages, stage{"updates and shutdown (winbake-updates)", t})
		case postProcessorRE.MatchString(line):
			pm := postProcessorRE.FindStringSubmatch(line)
			name := pm[1] + pm[2]
			if name == "manifest" { // Packer's own, a record of the artifacts
				end = t
				continue
			}
			if what, ok := stageNames[name]; ok {
				name = what + " (" + name + ")"
			}
			stages = append(stages, stage{name, t})
		case finishedRE.MatchString(line):
			if end.IsZero() {
				end = t
			}
		}
		if r := rebootsRE.FindStringSubmatch(line); r != nil {
			reboots = r[1]
		}
	}
	if len(stages) == 0 || end.IsZero() {
		return nil, end, "", fmt.Errorf("%s: no complete timestamped build (packer build -timestamp-ui)", logPath)
	}
	return stages, end, reboots, s.Err()
}

func printSummary(logPath, dir string) error {
	stages, end, reboots, err := stagesOf(logPath)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintf(w, "winbake demo: the whole job on the stand-in Windows in %s\n\n", end.Sub(stages[0].start))
	fmt.Fprintln(w, "STAGE\tTIME")
	for i, s := range stages {
		next := end
		if i+1 < len(stages) {
			next = stages[i+1].start
		}
		fmt.Fprintf(w, "%s\t%s\n", s.name, next.Sub(s.start))
	}

	fmt.Fprintln(w, "\nIMAGE\tSIZE")
	for _, f := range []string{"golden/standin.qcow2", "generalized/standin.qcow2", "clouds/standin.qcow2", "clouds/standin.dd.gz"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			return fmt.Errorf("image %s: %w", f, err)
		}
		fmt.Fprintf(w, "%s\t%s\n", filepath.Join(dir, f), progress.Bytes(fi.Size()))
	}

	var golden image.Manifest
	if err := readJSON(filepath.Join(dir, "golden", "standin.json"), &golden); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nUPDATE\tRESULT\n")
	for _, u := range golden.Updates {
		fmt.Fprintf(w, "%s %s\t%s\n", u.KB, u.File, u.Result)
	}
	if reboots != "" {
		fmt.Fprintf(w, "(%s reboot(s))\t\n", reboots)
	}

	var report verify.Report
	if err := readJSON(filepath.Join(dir, "generalized", "standin.verify.json"), &report); err != nil {
		return err
	}
	passed := 0
	for _, c := range report.Checks {
		if c.Result == verify.ResultPass {
			passed++
		}
	}
	fmt.Fprintf(w, "\nverify: %d of %d checks passed (%s)\n", passed, len(report.Checks), filepath.Join(dir, "generalized", "standin.verify.txt"))

	var manifest struct {
		Builds []struct {
			ArtifactID string `json:"artifact_id"`
		} `json:"builds"`
	}
	if err := readJSON(filepath.Join(dir, "packer-manifest.json"), &manifest); err != nil {
		return err
	}
	if len(manifest.Builds) == 0 || manifest.Builds[len(manifest.Builds)-1].ArtifactID == "" {
		return fmt.Errorf("packer-manifest.json records no Glance image")
	}
	fmt.Fprintf(w, "glance image: %s\n", manifest.Builds[len(manifest.Builds)-1].ArtifactID)
	return w.Flush()
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
