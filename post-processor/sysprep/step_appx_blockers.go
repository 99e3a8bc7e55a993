package sysprep

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// What sysprep's own log says about a run, so that winbake removes exactly
// the Appx packages sysprep names instead of keeping a list of them.
//
// Sysprep's Appx provider (AppxSysprep.dll, SysprepGeneralizeValidate)
// refuses to generalize while a package is installed for a user but not
// provisioned for all users, and names it in
// C:\Windows\System32\Sysprep\Panther\setupact.log (Microsoft, "Errors when
// capturing Windows 11 image by using capture media in Configuration
// Manager"; KB 2769827 "Sysprep fails after you remove or update Microsoft
// Store apps that include built-in Windows images"):
//
//	<date>, Error                 SYSPRP Package <full name> was installed for a user, but not provisioned for all users. This package will not function properly in the sysprep image.
//	...
//	<date>, Error                 SYSPRP ActionPlatform::LaunchModule: Failure occurred while executing 'SysprepGeneralizeValidate' from C:\Windows\System32\AppxSysprep.dll; dwRet = 0x3cf2
//
// The validation fails before sysprep changes anything: the image state
// stays IMAGE_STATE_COMPLETE and sysprep can run again once the package is
// gone ("After the package is removed, restart the capture process and
// monitor other packages in the same situation"). Each run names one
// package.

const (
	sysprepActLog = `C:\Windows\System32\Sysprep\Panther\setupact.log`
	// provisionedMarker is what appx-remove-blocker.ps1 prints when it
	// removed a provisioned copy too.
	provisionedMarker = "winbake: provisioned copy removed"
	// maxSysprepRuns bounds the runs of sysprep, each of which may name
	// one more package; timeout bounds them too.
	maxSysprepRuns = 10
	// excerptLines is how many lines of a failed run are quoted.
	excerptLines = 20
)

var (
	runBanner = "Beginning of a new sysprep run"
	// appxBlocker is the Appx provider's line naming a package.
	appxBlocker = regexp.MustCompile(`SYSPRP Package (\S+) was installed for a user, but not provisioned for all users`)
	// errorLine is a line logged at level Error.
	errorLine = regexp.MustCompile(`^\S+ \S+, Error\b`)
)

// sysprepRun is what setupact.log says about sysprep's last run.
type sysprepRun struct {
	// Text is the run's part of the log, from its banner; Start is where
	// it starts in the log.
	Text  string
	Start int
	// Blockers are the Appx packages it named as installed for a user but
	// not provisioned for all users.
	Blockers []string
	// Failed is true when it logged its failure ("Hit failure while ...",
	// "Failure occurred while executing ...").
	Failed bool
	// Excerpt is its Error lines (or its last lines without any), at most
	// excerptLines of them.
	Excerpt string
}

// lastSysprepRun reads the last run of setupact.log's text; a log without
// a run banner is one run.
func lastSysprepRun(log string) sysprepRun {
	log = strings.ReplaceAll(log, "\r\n", "\n")
	start := 0
	if i := strings.LastIndex(log, runBanner); i >= 0 {
		start = strings.LastIndex(log[:i], "\n") + 1
		// The banner is three lines: a row of '=' starts it.
		if prev := strings.LastIndex(log[:max(start-1, 0)], "\n") + 1; start > 0 && strings.HasSuffix(strings.TrimSpace(log[prev:start]), "=====") {
			start = prev
		}
	}
	lines := strings.Split(log[start:], "\n")
	run := sysprepRun{Text: strings.TrimSpace(log[start:]), Start: start}
	var errs, all []string
	for _, l := range lines {
		l = strings.TrimRight(l, " \t")
		if l == "" {
			continue
		}
		all = append(all, l)
		if m := appxBlocker.FindStringSubmatch(l); m != nil && !contains(run.Blockers, m[1]) {
			run.Blockers = append(run.Blockers, m[1])
		}
		if strings.Contains(l, "Hit failure while") || strings.Contains(l, "Failure occurred while executing") {
			run.Failed = true
		}
		if errorLine.MatchString(l) {
			errs = append(errs, l)
		}
	}
	quote := errs
	if len(quote) == 0 {
		quote = all
	}
	if len(quote) > excerptLines {
		quote = quote[len(quote)-excerptLines:]
	}
	run.Excerpt = strings.Join(quote, "\n")
	return run
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// readSysprepLog reads setupact.log; "" when Windows has none yet.
func readSysprepLog(ctx context.Context, comm packersdk.Communicator) (string, error) {
	r, err := runGuestUntil(ctx, comm, "type "+sysprepActLog)
	if err != nil {
		return "", err
	}
	if r.ExitStatus != 0 {
		return "", nil
	}
	return r.Stdout, nil
}

// removeAppxBlocker removes a package sysprep named, for all users and its
// provisioned copy; it says what it removed.
func removeAppxBlocker(ctx context.Context, ui packersdk.Ui, comm packersdk.Communicator, fullName string) error {
	r, err := runScript(ctx, comm, "appx-remove-blocker.ps1", map[string]string{"FullName": fullName, "ProvisionedMarker": provisionedMarker})
	if err != nil {
		return fmt.Errorf("removing the Appx package %s that sysprep named: %w", fullName, err)
	}
	what := "for all users"
	if contains(lines(r.Stdout), provisionedMarker) {
		what += " and its provisioned copy"
	}
	ui.Say(fmt.Sprintf("Sysprep named the Appx package %s (installed for a user, not provisioned for all users): removed it %s", fullName, what))
	return nil
}
