package verify

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// Check results.
const (
	ResultPass   = "pass"
	ResultFail   = "fail"
	ResultNotRun = "not run"
	// ResultWarn and ResultInfo report what does not fail the image.
	ResultWarn = "warn"
	ResultInfo = "info"
)

// CheckResult is one check of the report.
type CheckResult struct {
	Name   string `json:"name"`
	Result string `json:"result"`
	// Evidence is what the result rests on: console lines, command
	// output, never a password.
	Evidence string `json:"evidence"`
}

// Report is the verification report saved beside the artifact.
type Report struct {
	Image    string        `json:"image"`
	Mode     string        `json:"mode"`
	Instance string        `json:"instance_uuid"`
	Hostname string        `json:"hostname"`
	Finished time.Time     `json:"finished"`
	Passed   bool          `json:"passed"`
	Checks   []CheckResult `json:"checks"`
}

func (r *Report) add(name, result, evidence string) {
	r.Checks = append(r.Checks, CheckResult{Name: name, Result: result, Evidence: evidence})
}

func (r *Report) pass(name, evidence string) { r.add(name, ResultPass, evidence) }
func (r *Report) fail(name, evidence string) { r.add(name, ResultFail, evidence) }

// Failed lists the names of the checks that failed. A check that could not
// run is not one of them: it is not run only when WinRM is not meant to stay
// (or did not log on, which fails its own check).
func (r *Report) Failed() []string {
	var out []string
	for _, c := range r.Checks {
		if c.Result == ResultFail {
			out = append(out, c.Name)
		}
	}
	return out
}

// Table renders the report for people.
func (r *Report) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "winbake-verify report for %s (%s, instance %s)\n", r.Image, r.Mode, r.Instance)
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CHECK\tRESULT\tEVIDENCE")
	for _, c := range r.Checks {
		ev := strings.ReplaceAll(strings.TrimSpace(c.Evidence), "\n", " | ")
		if len(ev) > 160 {
			ev = ev[:157] + "..."
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", c.Name, c.Result, ev)
	}
	w.Flush()
	if r.Passed {
		b.WriteString("All checks passed.\n")
		for _, c := range r.Checks {
			if c.Result == ResultWarn {
				fmt.Fprintf(&b, "Warning: %s\n", c.Name)
			}
		}
	} else {
		fmt.Fprintf(&b, "FAILED: %s\n", strings.Join(r.Failed(), ", "))
	}
	return b.String()
}

// Save writes <name>.verify.json and <name>.verify.txt into dir.
func (r *Report) Save(dir, name string) (jsonPath, textPath string, err error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", "", err
	}
	jsonPath = filepath.Join(dir, name+".verify.json")
	textPath = filepath.Join(dir, name+".verify.txt")
	if err := os.WriteFile(jsonPath, append(b, '\n'), 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(textPath, []byte(r.Table()), 0o644); err != nil {
		return "", "", err
	}
	return jsonPath, textPath, nil
}
