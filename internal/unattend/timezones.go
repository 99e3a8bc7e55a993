package unattend

import (
	_ "embed"
	"sort"
	"strings"
	"sync"
)

//go:embed timezones.txt
var timeZonesText string

var timeZones = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	for _, line := range strings.Split(timeZonesText, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m[line] = true
	}
	return m
})

// TimeZones returns the Windows time zone IDs accepted in Settings.TimeZone,
// sorted.
func TimeZones() []string {
	m := timeZones()
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// IsTimeZone reports whether id is a Windows time zone ID (exact match).
func IsTimeZone(id string) bool { return timeZones()[id] }

// timeZoneFold finds the correctly spelled ID for a case-insensitive match.
func timeZoneFold(id string) (string, bool) {
	for k := range timeZones() {
		if strings.EqualFold(k, id) {
			return k, true
		}
	}
	return "", false
}
