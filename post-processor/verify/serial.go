package verify

import (
	"regexp"
	"strings"
)

// Console lines: cloudbase-init logs to COM1 when installed with
// LOGGINGSERIALPORTNAME=COM1 (as winbake-sysprep does); the stand-in guest
// logs its Setup phases.
const (
	// cloudbase-init: "... INFO cloudbaseinit.init [-] Executing plugin 'SetHostNamePlugin'"
	pluginsDoneText    = "Plugins execution done"
	setupCompleteText  = "setup: complete"
	standinReadyText   = "windows: ready"
	metadataLoadedText = "Metadata service loaded: "
	noMetadataText     = "No metadata service found"
)

var (
	executingPlugin = regexp.MustCompile(`Executing plugin '([A-Za-z0-9_]+)'`)
	// init.py _exec_plugin: "plugin '%(plugin_name)s' failed with error '%(ex)s'".
	failedPlugin = regexp.MustCompile(`plugin '([A-Za-z0-9_]+)' failed with error '(.*)'$`)
)

// serialFacts is what the console log tells.
type serialFacts struct {
	SetupComplete   bool
	Ready           bool
	PluginsDone     int // cloudbase-init runs that finished
	Plugins         []string
	MetadataService string
	// NoMetadata: a run found no metadata service.
	NoMetadata bool
	// Failed are the plugins whose last run raised, with the error:
	// cloudbase-init runs them again at the next boot.
	Failed []pluginFailure
}

type pluginFailure struct{ Plugin, Error string }

func readSerial(log string) serialFacts {
	var f serialFacts
	seen := map[string]bool{}
	lastError := map[string]string{}
	var order []string
	for _, line := range strings.Split(log, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.Contains(line, setupCompleteText):
			f.SetupComplete = true
		case strings.Contains(line, standinReadyText):
			f.Ready = true
		case strings.Contains(line, pluginsDoneText):
			f.PluginsDone++
		case strings.Contains(line, noMetadataText):
			f.NoMetadata = true
		}
		if m := executingPlugin.FindStringSubmatch(line); m != nil {
			if !seen[m[1]] {
				seen[m[1]] = true
				f.Plugins = append(f.Plugins, m[1])
			}
			delete(lastError, m[1])
		}
		if m := failedPlugin.FindStringSubmatch(line); m != nil {
			if _, ok := lastError[m[1]]; !ok {
				order = append(order, m[1])
			}
			lastError[m[1]] = m[2]
		}
		if _, svc, ok := strings.Cut(line, metadataLoadedText); ok {
			f.MetadataService = strings.Trim(strings.TrimSpace(svc), "'")
		}
	}
	for _, p := range order {
		if e, ok := lastError[p]; ok {
			f.Failed = append(f.Failed, pluginFailure{p, e})
			delete(lastError, p)
		}
	}
	return f
}
