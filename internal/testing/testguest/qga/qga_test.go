package qga

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// client is the host side of the channel, as libvirt talks to it.
type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func start(t *testing.T, opts Options) *client {
	t.Helper()
	host, guest := net.Pipe()
	a := New(opts)
	done := make(chan error, 1)
	go func() { done <- a.Serve(guest) }()
	t.Cleanup(func() {
		host.Close()
		select {
		case err := <-done:
			if err != io.EOF && err != io.ErrClosedPipe {
				t.Errorf("Serve ended with %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not end when the channel closed")
		}
		guest.Close()
	})
	return &client{t: t, conn: host, r: bufio.NewReader(host)}
}

func (c *client) send(s string) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatal(err)
	}
}

// reply reads one response line and decodes it.
func (c *client) reply() map[string]any {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading a reply: %v (read %q)", err, line)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		c.t.Fatalf("reply %q: %v", line, err)
	}
	return m
}

func (c *client) call(cmd string) map[string]any {
	c.t.Helper()
	c.send(cmd + "\n")
	return c.reply()
}

func ethernet() ([]Interface, error) {
	return []Interface{{
		Name: "Ethernet", HardwareAddress: "52:54:00:12:34:56",
		Addresses:  []Address{{Type: "ipv4", Address: "192.168.214.150", Prefix: 24}},
		Statistics: &Stats{RxBytes: 1200, RxPackets: 10, TxBytes: 800, TxPackets: 8},
	}, Loopback()}, nil
}

// libvirt 9.0 sends guest-sync with a fresh id before each command and
// takes the reply whose return is that id; then the command.
func TestSyncThenInterfacesAsLibvirt(t *testing.T) {
	var unmodelled []string
	c := start(t, Options{Interfaces: ethernet, Unmodelled: func(f string, a ...any) { unmodelled = append(unmodelled, fmt.Sprintf(f, a...)) }})
	r := c.call(`{"execute":"guest-sync", "arguments":{"id":1733512345678}}`)
	if id, ok := r["return"].(float64); !ok || int64(id) != 1733512345678 {
		t.Fatalf("guest-sync returned %v", r)
	}
	c.send(`{"execute":"guest-network-get-interfaces"}` + "\n")
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := c.r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Return []struct {
			Name            string `json:"name"`
			HardwareAddress string `json:"hardware-address"`
			IPAddresses     []struct {
				Type    string `json:"ip-address-type"`
				Address string `json:"ip-address"`
				Prefix  int    `json:"prefix"`
			} `json:"ip-addresses"`
			Statistics map[string]uint64 `json:"statistics"`
		} `json:"return"`
	}
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Return) != 2 {
		t.Fatalf("interfaces %s", line)
	}
	eth, lo := got.Return[0], got.Return[1]
	if eth.Name != "Ethernet" || eth.HardwareAddress != "52:54:00:12:34:56" || len(eth.IPAddresses) != 1 ||
		eth.IPAddresses[0].Type != "ipv4" || eth.IPAddresses[0].Address != "192.168.214.150" || eth.IPAddresses[0].Prefix != 24 {
		t.Errorf("Ethernet entry: %s", line)
	}
	for _, k := range []string{"rx-bytes", "rx-packets", "rx-errs", "rx-dropped", "tx-bytes", "tx-packets", "tx-errs", "tx-dropped"} {
		if _, ok := eth.Statistics[k]; !ok {
			t.Errorf("statistics lack %s: %s", k, line)
		}
	}
	if lo.Name != "Loopback Pseudo-Interface 1" || lo.HardwareAddress != "" || !strings.Contains(line, `"ip-address":"127.0.0.1","prefix":8`) {
		t.Errorf("loopback entry: %s", line)
	}
	if strings.Contains(line, `"hardware-address":""`) {
		t.Errorf("the loopback has no hardware-address member on Windows: %s", line)
	}
	if len(unmodelled) > 0 {
		t.Errorf("unmodelled: %v", unmodelled)
	}
}

// guest-sync-delimited answers with a leading 0xFF; a 0xFF from the host
// drops partly read input (what a previous client left).
func TestDelimitedSyncAndResync(t *testing.T) {
	c := start(t, Options{})
	c.send(`{"execute":"guest-ping", "argu` + "\xff")
	c.send(`{"execute":"guest-sync-delimited","arguments":{"id":42}}` + "\n")
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := c.r.ReadByte()
	if err != nil || b != 0xFF {
		t.Fatalf("first byte %#x, %v; want the 0xFF sentinel", b, err)
	}
	if r := c.reply(); r["return"] != float64(42) {
		t.Fatalf("guest-sync-delimited returned %v", r)
	}
	if r := c.call(`{"execute":"guest-ping"}`); fmt.Sprint(r["return"]) != "map[]" {
		t.Errorf("guest-ping returned %v", r)
	}
}

func TestInfoOSInfoHostName(t *testing.T) {
	c := start(t, Options{OS: WindowsOSInfo("Standard"), HostName: "WIN-BUILD"})
	r := c.call(`{"execute":"guest-info"}`)
	info, _ := r["return"].(map[string]any)
	if info["version"] != Version {
		t.Errorf("guest-info %v", r)
	}
	cmds, _ := info["supported_commands"].([]any)
	found := map[string]bool{}
	for _, c := range cmds {
		m := c.(map[string]any)
		if m["enabled"] != true || m["success-response"] != true {
			t.Errorf("command info %v", m)
		}
		found[m["name"].(string)] = true
	}
	for _, want := range []string{"guest-sync", "guest-sync-delimited", "guest-ping", "guest-info", "guest-network-get-interfaces", "guest-get-osinfo"} {
		if !found[want] {
			t.Errorf("guest-info lacks %s: %v", want, r)
		}
	}
	r = c.call(`{"execute":"guest-get-osinfo"}`)
	os, _ := r["return"].(map[string]any)
	if os["id"] != "mswindows" || os["pretty-name"] != "Windows Server 2022 Standard" || os["kernel-release"] != "20348" || os["machine"] != "x86_64" {
		t.Errorf("guest-get-osinfo %v", r)
	}
	r = c.call(`{"execute":"guest-get-host-name"}`)
	if hn, _ := r["return"].(map[string]any); hn["host-name"] != "WIN-BUILD" {
		t.Errorf("guest-get-host-name %v", r)
	}
}

// A command the stand-in does not model gets qemu-ga's CommandNotFound and
// is reported; so is a malformed request, which gets an error too.
func TestUnmodelledCommands(t *testing.T) {
	var unmodelled []string
	c := start(t, Options{Unmodelled: func(f string, a ...any) { unmodelled = append(unmodelled, fmt.Sprintf(f, a...)) }})
	r := c.call(`{"execute":"guest-exec","arguments":{"path":"cmd.exe"}}`)
	e, _ := r["error"].(map[string]any)
	if e["class"] != "CommandNotFound" || e["desc"] != "The command guest-exec has not been found" {
		t.Errorf("guest-exec: %v", r)
	}
	if len(unmodelled) != 1 || !strings.Contains(unmodelled[0], "guest-exec") {
		t.Errorf("unmodelled %v", unmodelled)
	}
	r = c.call(`{"execute":"guest-sync"}`)
	if e, _ := r["error"].(map[string]any); e["class"] != "GenericError" {
		t.Errorf("guest-sync without id: %v", r)
	}
	r = c.call(`{"execute":"guest-ping","arguments":{"x":1}}`)
	if e, _ := r["error"].(map[string]any); e["class"] != "GenericError" {
		t.Errorf("guest-ping with an argument: %v", r)
	}
	// The request id is echoed, as QMP does.
	r = c.call(`{"execute":"guest-ping","id":"abc"}`)
	if r["id"] != "abc" {
		t.Errorf("id not echoed: %v", r)
	}
	// Braces inside strings do not end the object.
	r = c.call(`{"execute":"guest-nothing","arguments":{"s":"}{\"}"}}`)
	if e, _ := r["error"].(map[string]any); e["class"] != "CommandNotFound" {
		t.Errorf("string with braces: %v", r)
	}
}
