package libvirt

// linuxKeycodes maps the QMP key names that qemuvm.ParseBootCommand
// produces to Linux input event codes (linux/input-event-codes.h), the
// codeset libvirt's send-key accepts everywhere.
var linuxKeycodes = map[string]uint32{
	"esc": 1, "1": 2, "2": 3, "3": 4, "4": 5, "5": 6, "6": 7, "7": 8, "8": 9, "9": 10, "0": 11,
	"minus": 12, "equal": 13, "backspace": 14, "tab": 15,
	"q": 16, "w": 17, "e": 18, "r": 19, "t": 20, "y": 21, "u": 22, "i": 23, "o": 24, "p": 25,
	"ret": 28, "a": 30, "s": 31, "d": 32, "f": 33, "g": 34, "h": 35, "j": 36, "k": 37, "l": 38,
	"semicolon": 39, "shift": 42, "backslash": 43,
	"z": 44, "x": 45, "c": 46, "v": 47, "b": 48, "n": 49, "m": 50,
	"comma": 51, "dot": 52, "slash": 53, "spc": 57,
	"f1": 59, "f2": 60, "f3": 61, "f4": 62, "f5": 63, "f6": 64, "f7": 65, "f8": 66, "f9": 67, "f10": 68,
	"f11": 87, "f12": 88,
	"up": 103, "left": 105, "right": 106, "down": 108, "delete": 111,
}

// keycodes translates one chord of QMP key names.
func keycodes(qcodes []string) []uint32 {
	codes := make([]uint32, 0, len(qcodes))
	for _, q := range qcodes {
		codes = append(codes, linuxKeycodes[q])
	}
	return codes
}
