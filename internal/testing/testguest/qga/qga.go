// Package qga is the stand-in's QEMU guest agent: the JSON protocol qemu-ga
// (the service QEMU-GA that virtio-win's qemu-ga-x86_64.msi installs on
// Windows) speaks on the virtio-serial port org.qemu.guest_agent.0.
//
// The host writes one JSON object per command, {"execute": <name>,
// "arguments": {...}}, optionally preceded by a 0xFF byte that makes the
// agent drop any partly read input; the agent answers each with one line,
// {"return": ...} or {"error": {"class": ..., "desc": ...}}. The commands
// modelled are those libvirt sends to find a guest's addresses and to see
// that the agent is alive (qemu/qapi/qga/qapi-schema.json):
//
//   - guest-sync {"id": int}: returns the id (libvirt 9.0 sends it before
//     every command and ignores replies until the id comes back);
//   - guest-sync-delimited {"id": int}: the same, the reply preceded by a
//     0xFF byte;
//   - guest-ping: returns {};
//   - guest-info: GuestAgentInfo, {"version", "supported_commands": [
//     {"name", "enabled", "success-response"}]};
//   - guest-network-get-interfaces: [GuestNetworkInterface], each {"name",
//     "hardware-address", "ip-addresses": [{"ip-address-type",
//     "ip-address", "prefix"}], "statistics": GuestNetworkInterfaceStat};
//     on Windows the names are the adapters' friendly names ("Ethernet"),
//     and the loopback "Loopback Pseudo-Interface 1" has no hardware
//     address;
//   - guest-get-osinfo: GuestOSInfo as qemu-ga reports it on Windows;
//   - guest-get-host-name: {"host-name"}.
//
// Any other command gets qemu-ga's {"error": {"class": "CommandNotFound",
// "desc": "The command <name> has not been found"}} and is reported as not
// modelled.
package qga

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
)

// Channel is the virtio-serial port name qemu-ga opens.
const Channel = "org.qemu.guest_agent.0"

// ServiceName is the Windows service the MSI installs.
const ServiceName = "QEMU-GA"

// Version is the qemu-ga version the stand-in reports.
const Version = "9.1.0"

// Address is one IP address of an interface.
type Address struct {
	// Type is "ipv4" or "ipv6".
	Type    string `json:"ip-address-type"`
	Address string `json:"ip-address"`
	Prefix  int    `json:"prefix"`
}

// Stats are GuestNetworkInterfaceStat.
type Stats struct {
	RxBytes   uint64 `json:"rx-bytes"`
	RxPackets uint64 `json:"rx-packets"`
	RxErrs    uint64 `json:"rx-errs"`
	RxDropped uint64 `json:"rx-dropped"`
	TxBytes   uint64 `json:"tx-bytes"`
	TxPackets uint64 `json:"tx-packets"`
	TxErrs    uint64 `json:"tx-errs"`
	TxDropped uint64 `json:"tx-dropped"`
}

// Interface is a GuestNetworkInterface.
type Interface struct {
	Name string `json:"name"`
	// HardwareAddress is the MAC, lower case with colons; empty for the
	// loopback, which has none on Windows.
	HardwareAddress string    `json:"hardware-address,omitempty"`
	Addresses       []Address `json:"ip-addresses"`
	Statistics      *Stats    `json:"statistics,omitempty"`
}

// Loopback is Windows' loopback interface as qemu-ga lists it.
func Loopback() Interface {
	return Interface{
		Name: "Loopback Pseudo-Interface 1",
		Addresses: []Address{
			{Type: "ipv6", Address: "::1", Prefix: 128},
			{Type: "ipv4", Address: "127.0.0.1", Prefix: 8},
		},
		Statistics: &Stats{},
	}
}

// OSInfo is GuestOSInfo.
type OSInfo struct {
	KernelRelease string `json:"kernel-release,omitempty"`
	KernelVersion string `json:"kernel-version,omitempty"`
	Machine       string `json:"machine,omitempty"`
	ID            string `json:"id,omitempty"`
	Name          string `json:"name,omitempty"`
	PrettyName    string `json:"pretty-name,omitempty"`
	Version       string `json:"version,omitempty"`
	VersionID     string `json:"version-id,omitempty"`
	Variant       string `json:"variant,omitempty"`
	VariantID     string `json:"variant-id,omitempty"`
}

// Options describe the guest the agent reports on.
type Options struct {
	// Interfaces lists the network interfaces at the time of the command.
	Interfaces func() ([]Interface, error)
	// OS is guest-get-osinfo's answer.
	OS OSInfo
	// HostName is guest-get-host-name's answer.
	HostName string
	// Unmodelled reports a command the stand-in does not model.
	Unmodelled func(format string, args ...any)
	// Logf, when set, gets a line per command.
	Logf func(format string, args ...any)
}

// Agent answers QGA commands.
type Agent struct {
	opts Options
	wmu  sync.Mutex
}

// New returns an agent.
func New(opts Options) *Agent { return &Agent{opts: opts} }

// commands are the modelled commands, for guest-info.
var commands = []string{
	"guest-sync-delimited", "guest-sync", "guest-ping", "guest-info",
	"guest-network-get-interfaces", "guest-get-osinfo", "guest-get-host-name",
}

type request struct {
	Execute   string          `json:"execute"`
	Arguments json.RawMessage `json:"arguments"`
	ID        json.RawMessage `json:"id,omitempty"`
}

// qgaError is a QMP error object.
type qgaError struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

type response struct {
	Return any             `json:"return,omitempty"`
	Error  *qgaError       `json:"error,omitempty"`
	ID     json.RawMessage `json:"id,omitempty"`
}

// Serve reads commands from rw and answers them until reading fails (io.EOF
// when the port closes). A virtio-serial port whose host side is not
// connected reads EOF; the caller reopens it.
func (a *Agent) Serve(rw io.ReadWriter) error {
	r := bufio.NewReader(rw)
	var buf bytes.Buffer
	depth, inString, escaped := 0, false, false
	for {
		c, err := r.ReadByte()
		if err != nil {
			return err
		}
		if c == 0xFF {
			// The host's resynchronisation: drop what was read so far.
			buf.Reset()
			depth, inString, escaped = 0, false, false
			continue
		}
		if depth == 0 && c != '{' {
			if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
				continue
			}
			// Not the start of an object: qemu-ga's lexer rejects it.
			if err := a.write(rw, false, response{Error: &qgaError{Class: "GenericError", Desc: "JSON parse error, invalid keyword '" + string(rune(c)) + "'"}}); err != nil {
				return err
			}
			continue
		}
		buf.WriteByte(c)
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		}
		if depth == 0 {
			line := append([]byte(nil), buf.Bytes()...)
			buf.Reset()
			delimited, resp := a.handle(line)
			if err := a.write(rw, delimited, resp); err != nil {
				return err
			}
		}
	}
}

func (a *Agent) write(w io.Writer, delimited bool, resp response) error {
	b, err := json.Marshal(resp)
	if err != nil {
		return err
	}
	out := make([]byte, 0, len(b)+2)
	if delimited {
		out = append(out, 0xFF)
	}
	out = append(append(out, b...), '\n')
	a.wmu.Lock()
	defer a.wmu.Unlock()
	_, err = w.Write(out)
	return err
}

func (a *Agent) logf(format string, args ...any) {
	if a.opts.Logf != nil {
		a.opts.Logf(format, args...)
	}
}

func (a *Agent) unmodelled(format string, args ...any) {
	if a.opts.Unmodelled != nil {
		a.opts.Unmodelled(format, args...)
	}
}

// handle answers one JSON object.
func (a *Agent) handle(line []byte) (delimited bool, resp response) {
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		return false, response{Error: &qgaError{Class: "GenericError", Desc: "JSON parse error, " + err.Error()}}
	}
	resp.ID = req.ID
	if req.Execute == "" {
		a.unmodelled("QEMU guest agent: a request without \"execute\": %s", line)
		resp.Error = &qgaError{Class: "GenericError", Desc: "QMP input lacks member 'execute'"}
		return false, resp
	}
	a.logf("QEMU guest agent: %s", req.Execute)
	args := map[string]json.RawMessage{}
	if len(req.Arguments) > 0 && string(req.Arguments) != "null" {
		if err := json.Unmarshal(req.Arguments, &args); err != nil {
			resp.Error = &qgaError{Class: "GenericError", Desc: "QMP input member 'arguments' must be an object"}
			return false, resp
		}
	}
	noArgs := func() bool {
		for k := range args {
			resp.Error = &qgaError{Class: "GenericError", Desc: fmt.Sprintf("Parameter '%s' is unexpected", k)}
			return false
		}
		return true
	}
	switch req.Execute {
	case "guest-sync", "guest-sync-delimited":
		id, ok := args["id"]
		var n int64
		if !ok {
			resp.Error = &qgaError{Class: "GenericError", Desc: "Parameter 'id' is missing"}
			return false, resp
		}
		if err := json.Unmarshal(id, &n); err != nil {
			resp.Error = &qgaError{Class: "GenericError", Desc: "Parameter 'id' expects integer"}
			return false, resp
		}
		resp.Return = n
		return req.Execute == "guest-sync-delimited", resp
	case "guest-ping":
		if noArgs() {
			resp.Return = struct{}{}
		}
	case "guest-info":
		if noArgs() {
			type cmdInfo struct {
				Name            string `json:"name"`
				Enabled         bool   `json:"enabled"`
				SuccessResponse bool   `json:"success-response"`
			}
			names := append([]string(nil), commands...)
			sort.Strings(names)
			info := struct {
				Version  string    `json:"version"`
				Commands []cmdInfo `json:"supported_commands"`
			}{Version: Version}
			for _, n := range names {
				info.Commands = append(info.Commands, cmdInfo{Name: n, Enabled: true, SuccessResponse: true})
			}
			resp.Return = info
		}
	case "guest-network-get-interfaces":
		if noArgs() {
			var ifaces []Interface
			var err error
			if a.opts.Interfaces != nil {
				ifaces, err = a.opts.Interfaces()
			}
			if err != nil {
				resp.Error = &qgaError{Class: "GenericError", Desc: err.Error()}
				break
			}
			if ifaces == nil {
				ifaces = []Interface{}
			}
			resp.Return = ifaces
		}
	case "guest-get-osinfo":
		if noArgs() {
			resp.Return = a.opts.OS
		}
	case "guest-get-host-name":
		if noArgs() {
			resp.Return = struct {
				HostName string `json:"host-name"`
			}{a.opts.HostName}
		}
	default:
		a.unmodelled("QEMU guest agent command %s is not modelled: %s", req.Execute, line)
		resp.Error = &qgaError{Class: "CommandNotFound", Desc: "The command " + req.Execute + " has not been found"}
	}
	return false, resp
}

// ErrNoPort is returned when the guest has no port named Channel.
var ErrNoPort = errors.New("no virtio-serial port named " + Channel)

// WindowsOSInfo is guest-get-osinfo as qemu-ga reports Windows Server 2022
// of an edition ("Standard", "Datacenter").
func WindowsOSInfo(edition string) OSInfo {
	if edition == "" {
		edition = "Standard"
	}
	return OSInfo{
		KernelRelease: "20348",
		KernelVersion: "10.0",
		Machine:       "x86_64",
		ID:            "mswindows",
		Name:          "Microsoft Windows",
		PrettyName:    "Windows Server 2022 " + edition,
		Version:       "Microsoft Windows Server 2022",
		VersionID:     "2022",
		Variant:       "server",
		VariantID:     "server",
	}
}
