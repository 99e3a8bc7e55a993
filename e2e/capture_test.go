//go:build e2e

package e2e

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// capture is tcpdump writing every frame of an interface to a file.
type capture struct {
	cmd    *exec.Cmd
	file   string
	stderr *bytes.Buffer
}

// startCapture starts tcpdump on iface (full frames, no name lookups,
// written as they come) and waits until it listens.
func startCapture(t *testing.T, iface string) *capture {
	t.Helper()
	c := &capture{file: filepath.Join(t.TempDir(), iface+".pcap"), stderr: &bytes.Buffer{}}
	c.cmd = exec.Command("tcpdump", "-i", iface, "-n", "-s", "0", "-U", "-w", c.file)
	c.cmd.Stderr = c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("tcpdump (scripts/deps.sh installs it): %v", err)
	}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
		}
	})
	for deadline := time.Now().Add(15 * time.Second); ; {
		if strings.Contains(c.stderr.String(), "listening on") {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("tcpdump did not start listening on %s: %s", iface, c.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends tcpdump (SIGINT flushes the file) and reads the capture.
func (c *capture) stop(t *testing.T) []capturedPacket {
	t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
		t.Fatalf("tcpdump did not stop: %s", c.stderr.String())
	}
	t.Logf("tcpdump: %s", strings.TrimSpace(c.stderr.String()))
	packets, err := readCapture(c.file)
	if err != nil {
		t.Fatal(err)
	}
	return packets
}

// capturedPacket is one frame: the whole frame, and for TCP the flow and
// its payload.
type capturedPacket struct {
	Frame            []byte
	SrcIP, DstIP     string
	TCP              bool
	Src, Dst         string // ip:port
	SrcPort, DstPort int
	Payload          []byte
}

func readCapture(path string) ([]capturedPacket, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []capturedPacket
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			break
		}
		p := capturedPacket{Frame: append([]byte(nil), data...)}
		pkt := gopacket.NewPacket(data, r.LinkType(), gopacket.Default)
		var src, dst string
		if ip, ok := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
			src, dst = ip.SrcIP.String(), ip.DstIP.String()
		} else if ip, ok := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok {
			src, dst = ip.SrcIP.String(), ip.DstIP.String()
		}
		p.SrcIP, p.DstIP = src, dst
		if tcp, ok := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP); ok {
			p.TCP = true
			p.SrcPort, p.DstPort = int(tcp.SrcPort), int(tcp.DstPort)
			p.Src, p.Dst = fmt.Sprintf("%s:%d", src, tcp.SrcPort), fmt.Sprintf("%s:%d", dst, tcp.DstPort)
			p.Payload = tcp.Payload
		}
		out = append(out, p)
	}
	return out, nil
}

// findSecrets returns each secret found in a frame or in a TCP stream
// (the payloads of a direction of a connection, concatenated in capture
// order, so that a secret split across segments is found too), with where.
func findSecrets(packets []capturedPacket, secrets map[string]string) map[string]string {
	streams := map[string]*bytes.Buffer{}
	var order []string
	for _, p := range packets {
		if !p.TCP || len(p.Payload) == 0 {
			continue
		}
		key := p.Src + ">" + p.Dst
		if streams[key] == nil {
			streams[key] = &bytes.Buffer{}
			order = append(order, key)
		}
		streams[key].Write(p.Payload)
	}
	found := map[string]string{}
	for name, s := range secrets {
		for i, p := range packets {
			if bytes.Contains(p.Frame, []byte(s)) {
				found[name] = fmt.Sprintf("frame %d", i+1)
				break
			}
		}
		if _, ok := found[name]; ok {
			continue
		}
		for _, key := range order {
			if bytes.Contains(streams[key].Bytes(), []byte(s)) {
				found[name] = "stream " + key
				break
			}
		}
	}
	return found
}

// credentialForms are the password and the forms in which WinRM clients
// carry it or a command: as is, in UTF-16, in Basic's base64 of
// "user:password", and base64 at each of the three byte alignments
// (without the first and last groups, which depend on what surrounds it).
func credentialForms(user, password string) map[string]string {
	forms := map[string]string{
		"the password":                       password,
		"the password in UTF-16LE":           string(utf16le(password)),
		"Basic's base64 of user:password":    base64.StdEncoding.EncodeToString([]byte(user + ":" + password)),
		"base64 of the password in UTF-16LE": aligned(string(utf16le(password)), 0),
	}
	for k := 0; k < 3; k++ {
		forms[fmt.Sprintf("base64 of the password at offset %d", k)] = aligned(password, k)
	}
	return forms
}

// aligned is the part of base64(k filler bytes + s + filler) that only s
// decides.
func aligned(s string, k int) string {
	enc := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("\x00", k) + s + "\x00\x00\x00"))
	start := 0
	if k > 0 {
		start = 4
	}
	end := (k + len(s)) / 3 * 4
	if end <= start {
		return enc
	}
	return enc[start:end]
}

func utf16le(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return b
}

// The search finds a password Basic carried over HTTP, split across two
// segments, and in each base64 alignment: a capture without findings
// means something.
func TestCaptureSearchFindsCleartext(t *testing.T) {
	const user, pw = "Administrator", "Bridge-e2e-Pw-7x"
	req := "POST /wsman HTTP/1.1\r\nAuthorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw)) + "\r\n\r\n<s:Envelope>"
	half := len(req) / 2
	packets := []capturedPacket{
		{TCP: true, Src: "10.0.0.1:40000", Dst: "10.0.0.2:5985", Payload: []byte(req[:half]), Frame: []byte(req[:half])},
		{TCP: true, Src: "10.0.0.2:5985", Dst: "10.0.0.1:40000", Payload: []byte("HTTP/1.1 200"), Frame: []byte("HTTP/1.1 200")},
		{TCP: true, Src: "10.0.0.1:40000", Dst: "10.0.0.2:5985", Payload: []byte(req[half:]), Frame: []byte(req[half:])},
	}
	found := findSecrets(packets, credentialForms(user, pw))
	if _, ok := found["Basic's base64 of user:password"]; !ok {
		t.Errorf("Basic's header not found: %v", found)
	}
	for k := 0; k < 3; k++ {
		enc := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("y", k) + pw + "zz"))
		name := fmt.Sprintf("base64 of the password at offset %d", k)
		if f := findSecrets([]capturedPacket{{Frame: []byte(enc)}}, map[string]string{name: aligned(pw, k)}); len(f) != 1 {
			t.Errorf("offset %d: %q not found in %q", k, aligned(pw, k), enc)
		}
	}
	if f := findSecrets(packets, map[string]string{"x": "not there"}); len(f) != 0 {
		t.Errorf("found %v", f)
	}
}
