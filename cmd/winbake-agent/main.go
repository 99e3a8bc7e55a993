// Command winbake-agent is the guest-side program of winbake. The plugin
// uploads it into the Windows guest and runs it over WinRM, one verb per
// command, reading the one JSON document it prints (see package agent for
// the verbs, documents and exit codes):
//
//	winbake-agent.exe version
//	winbake-agent.exe boot-time
//	winbake-agent.exe pending-reboot
//	winbake-agent.exe install C:\path\update.msu [--log C:\path\dism.log] [--temp C:\path] [--journal C:\path\x.json]
//	winbake-agent.exe fetch http://10.0.2.2:8000/token/0/update.msu C:\path\update.msu --sha256 <hex>
//	winbake-agent.exe append-line C:\Windows\Setup\Scripts\SetupComplete.cmd <base64 line>
//	winbake-agent.exe winrm-client [--port 5985]
//	winbake-agent.exe remove C:\path\update.msu
//	winbake-agent.exe restart [--delay 0s] [--reason text]
//	winbake-agent.exe tail C:\path\dism.log [--from 0] [--max 262144]
//
// It is built for windows/amd64 and embedded in the plugin (package
// agentbin, scripts/build-agent.sh). Built for another system it only
// reports that it needs Windows: there the agent's logic runs inside
// winbake's simulated guest, which calls agent.Main with its own System.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"

	"github.com/winbake/packer-plugin-winbake/internal/agent"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	sys, err := newSystem()
	if err != nil {
		return int(agent.Unsupported(args, stdout, stderr, err))
	}
	return int(agent.Main(ctx, sys, args, stdin, stdout, stderr))
}
