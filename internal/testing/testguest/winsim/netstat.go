package winsim

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// runNetstat is NETSTAT.EXE for `netstat -n -p TCP` (also -a, -o ignored
// otherwise): the TCP connections of the machine the stand-in runs on,
// read from Linux's /proc/net/tcp, printed as Windows prints them. Under
// QEMU user networking the WinRM clients appear as 10.0.2.2, as on a
// Windows guest.
func (m *Machine) runNetstat(p *proc) uint32 {
	numeric, tcp := false, false
	for i := 0; i < len(p.args); i++ {
		switch a := strings.ToLower(p.args[i]); {
		case a == "-n" || a == "/n":
			numeric = true
		case a == "-a" || a == "/a" || a == "-o" || a == "/o":
		case a == "-p" || a == "/p":
			if i+1 < len(p.args) && strings.EqualFold(p.args[i+1], "tcp") {
				tcp = true
				i++
				continue
			}
			m.unsupportedf("netstat.exe -p other than TCP: %q", p.args)
			return 1
		default:
			m.unsupportedf("netstat.exe argument not understood: %q", a)
			return 1
		}
	}
	if !numeric || !tcp {
		m.unsupportedf("netstat.exe: only `netstat -n -p TCP` is modelled, got %q", p.args)
		return 1
	}
	conns, err := procNetTCP("/proc/net/tcp")
	if err != nil {
		p.print(p.stderr, "The requested service provider could not be loaded or initialized.\r\n")
		return 1
	}
	var b strings.Builder
	b.WriteString("\r\nActive Connections\r\n\r\n  Proto  Local Address          Foreign Address        State\r\n")
	for _, c := range conns {
		fmt.Fprintf(&b, "  TCP    %-22s %-22s %s\r\n", c.local, c.remote, c.state)
	}
	p.print(p.stdout, b.String())
	return 0
}

type tcpConn struct{ local, remote, state string }

// Linux TCP states (include/net/tcp_states.h) by Windows' names.
var tcpStates = map[string]string{
	"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECEIVED", "04": "FIN_WAIT_1", "05": "FIN_WAIT_2",
	"06": "TIME_WAIT", "07": "CLOSED", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTENING", "0B": "CLOSING",
}

func procNetTCP(path string) ([]tcpConn, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []tcpConn
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 {
			continue
		}
		local, lerr := hexAddr(fields[1])
		remote, rerr := hexAddr(fields[2])
		if lerr != nil || rerr != nil {
			continue
		}
		state := tcpStates[fields[3]]
		if state == "LISTENING" {
			continue // netstat lists listeners only with -a
		}
		out = append(out, tcpConn{local, remote, state})
	}
	return out, sc.Err()
}

// hexAddr decodes /proc/net/tcp's "0100007F:1F90" (IPv4, little-endian).
func hexAddr(s string) (string, error) {
	h, port, ok := strings.Cut(s, ":")
	b, err := hex.DecodeString(h)
	if !ok || err != nil || len(b) != 4 {
		return "", fmt.Errorf("address %q", s)
	}
	n, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		return "", err
	}
	ip := net.IPv4(b[3], b[2], b[1], b[0])
	return net.JoinHostPort(ip.String(), strconv.FormatUint(n, 10)), nil
}
