package agent

import (
	"bytes"
	"context"
	"net"
	"sort"
	"strconv"
	"strings"
)

// WinRMClientResult is the document of `winrm-client`.
type WinRMClientResult struct {
	Header
	// Port is the local port looked at (WinRM: 5985, or 5986 for HTTPS).
	Port int `json:"port"`
	// Clients are the remote addresses of the established connections to
	// Port, the most frequent first: how this machine sees the WinRM
	// client, i.e. the address at which it reaches the build host (behind
	// NAT, the NAT gateway, e.g. 10.0.2.2 under QEMU user networking).
	Clients []string `json:"clients"`
}

func runWinRMClient(ctx context.Context, e *env, _ []string, flags map[string]string) (document, *usageError) {
	port := 5985
	if s, ok := flags["port"]; ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 65535 {
			return nil, &usageError{msg: "--port " + strconv.Quote(s) + ": want a TCP port number", flags: true}
		}
		port = n
	}
	res := &WinRMClientResult{Port: port, Clients: []string{}}
	root := systemRoot(e.sys.Registry(), &res.Header)
	var out bytes.Buffer
	code, err := e.sys.Processes().Run(ctx, winJoin(root, "System32", "NETSTAT.EXE"), []string{"-n", "-p", "TCP"}, &out, &out)
	if err != nil || code != 0 {
		res.fail("netstat -n -p TCP: exit code %d, %v: %s", code, err, strings.TrimSpace(out.String()))
		return res, nil
	}
	res.Clients = netstatClients(out.String(), port)
	res.OK = true
	e.progress("connections to port %d from %v", port, res.Clients)
	return res, nil
}

// netstatClients parses `netstat -n -p TCP` and returns the remote IPs of
// ESTABLISHED connections to the local port, the most frequent first.
func netstatClients(text string, port int) []string {
	count := map[string]int{}
	var order []string
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.EqualFold(f[0], "TCP") || f[3] != "ESTABLISHED" {
			continue
		}
		_, lport, err := net.SplitHostPort(f[1])
		if err != nil || lport != strconv.Itoa(port) {
			continue
		}
		rhost, _, err := net.SplitHostPort(f[2])
		if err != nil {
			continue
		}
		if count[rhost] == 0 {
			order = append(order, rhost)
		}
		count[rhost]++
	}
	sort.SliceStable(order, func(i, j int) bool { return count[order[i]] > count[order[j]] })
	if order == nil {
		return []string{}
	}
	return order
}
