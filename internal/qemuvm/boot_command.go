package qemuvm

import (
	"fmt"
	"strings"
	"time"
	"unicode"
)

// DefaultUEFIBootCommand answers "Press any key to boot from CD or DVD"
// of Windows media under UEFI by pressing space a few times.
var DefaultUEFIBootCommand = []string{"<spacebar><wait1s><spacebar><wait1s><spacebar><wait1s><spacebar>"}

// DefaultUEFIBootCommandTCG is the default under TCG, where OVMF takes
// 10 to 20 s to start the CD's boot loader (much longer on a busy host),
// whose prompt waits about 5 s: space once a second for 30 s. When the
// serial console is followed, StepBootCommand's UntilCDBoot presses space
// instead until the firmware has started the CD (see CDBootWindow).
var DefaultUEFIBootCommandTCG = []string{strings.Repeat("<spacebar><wait1s>", 30)}

// BootKey is one step of a parsed boot command: a key chord to press, or a
// pause.
type BootKey struct {
	QCodes []string
	Wait   time.Duration
}

var specialKeys = map[string]string{
	"enter": "ret", "return": "ret", "spacebar": "spc", "esc": "esc", "tab": "tab",
	"bs": "backspace", "del": "delete", "up": "up", "down": "down", "left": "left", "right": "right",
	"f1": "f1", "f2": "f2", "f3": "f3", "f4": "f4", "f5": "f5", "f6": "f6", "f7": "f7",
	"f8": "f8", "f9": "f9", "f10": "f10", "f11": "f11", "f12": "f12",
}

var charKeys = map[rune][]string{
	' ': {"spc"}, '.': {"dot"}, ',': {"comma"}, '/': {"slash"}, '\\': {"backslash"}, '-': {"minus"},
	'=': {"equal"}, ';': {"semicolon"}, ':': {"shift", "semicolon"}, '_': {"shift", "minus"},
}

// ParseBootCommand parses `boot_command` entries: plain characters (a-z,
// A-Z, 0-9 and . , / \ - = ; : _ and space), special keys such as
// `<enter>`, `<spacebar>`, `<esc>`, `<tab>`, `<f1>`…`<f12>`, and waits
// `<wait>` (1 s), `<wait5>` (5 s) or `<wait500ms>` (any Go duration).
func ParseBootCommand(entries []string) ([]BootKey, error) {
	var keys []BootKey
	for _, e := range entries {
		rest := e
		for rest != "" {
			if rest[0] == '<' {
				end := strings.IndexByte(rest, '>')
				if end < 0 {
					return nil, fmt.Errorf("boot_command: %q has an unclosed <", e)
				}
				name := strings.ToLower(rest[1:end])
				rest = rest[end+1:]
				if q, ok := specialKeys[name]; ok {
					keys = append(keys, BootKey{QCodes: []string{q}})
					continue
				}
				if w, ok := strings.CutPrefix(name, "wait"); ok {
					d := time.Second
					if w != "" {
						if strings.IndexFunc(w, unicode.IsLetter) < 0 {
							w += "s"
						}
						var err error
						if d, err = time.ParseDuration(w); err != nil || d < 0 {
							return nil, fmt.Errorf("boot_command: <%s> is not a wait; use <wait>, <wait5> or <wait500ms>", name)
						}
					}
					keys = append(keys, BootKey{Wait: d})
					continue
				}
				return nil, fmt.Errorf("boot_command: <%s> is not a known key; use for example <enter>, <spacebar>, <esc>, <tab>, <f1>..<f12> or <wait5>", name)
			}
			r := []rune(rest)[0]
			rest = rest[len(string(r)):]
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
				keys = append(keys, BootKey{QCodes: []string{string(r)}})
			case r >= 'A' && r <= 'Z':
				keys = append(keys, BootKey{QCodes: []string{"shift", string(unicode.ToLower(r))}})
			default:
				q, ok := charKeys[r]
				if !ok {
					return nil, fmt.Errorf("boot_command: the character %q cannot be typed; use letters, digits, space and . , / \\ - = ; : _", r)
				}
				keys = append(keys, BootKey{QCodes: q})
			}
		}
	}
	return keys, nil
}
