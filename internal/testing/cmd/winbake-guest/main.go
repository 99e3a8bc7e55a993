// Command winbake-guest runs winbake's stand-in Windows guest (package
// testguest: the simulated Windows behind the stand-in WinRM server) as a
// standalone program, e.g. inside a small Linux VM that plays a Windows
// guest for Packer:
//
//	winbake-guest -state-dir /var/lib/winbake-guest -listen :5985 \
//	    -user vagrant -password vagrant -computer-name WIN-BUILD \
//	    -windows 2022 -catalog /etc/winbake-guest/catalog.json
//
// The machine's disk (files, registry, servicing store, boot history) is
// kept in -state-dir; started again on the same directory, the guest boots
// that disk once more, finishing pending servicing as a reboot does.
// -catalog is a JSON servicing catalog (see testguest.Catalog); -windows a
// release name (2016, 2019, 2022, 2025, 10, 11) or a JSON winsim.Windows
// object. The power flags set how long a restart takes and what the WinRM
// listener does meanwhile.
//
// It logs to stderr: "listening on http://<address>" once it serves,
// every command and power transition, each WinRM exchange with -v, and
// "unsupported: ..." for every request the stand-in does not understand
// (with -strict, the exit status is then 3). SIGTERM or SIGINT stops it:
// the listeners close, running commands end, the state is on disk, and it
// exits 0. Bad flags exit 2; a failure to start exits 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest"
	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman"
)

func main() {
	os.Exit(runGuest(os.Args[1:], os.Stderr))
}

type config struct {
	opts    testguest.Options
	verbose bool
	strict  bool
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("winbake-guest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		listen      = fs.String("listen", ":5985", "HTTP listen address of WinRM (port 0: any free port)")
		listenTLS   = fs.String("listen-tls", "", "HTTPS listen address (self-signed certificate), e.g. :5986; empty: none")
		stateDir    = fs.String("state-dir", "", "directory holding the machine's disk (required)")
		user        = fs.String("user", testguest.DefaultUser, "the local account WinRM accepts")
		password    = fs.String("password", testguest.DefaultPassword, "its password")
		computer    = fs.String("computer-name", "", "computer name of a new machine (default WIN-SIMULATED)")
		windows     = fs.String("windows", "2022", "Windows release of a new machine: 2016, 2019, 2022, 2025, 10, 11, or a JSON object")
		catalog     = fs.String("catalog", "", "JSON servicing catalog file")
		agentFile   = fs.String("agent-file", "", "file whose content is installed as the guest's winbake-agent.exe (it always runs the built-in agent)")
		drives      = fs.String("drives", "", "extra drive letters, comma-separated (e.g. E)")
		auth        = fs.String("auth", "basic,ntlm", "authentication schemes: basic, ntlm, or both")
		activityID  = fs.Bool("activity-id", true, "add p:ActivityId to responses (Server 2012 R2 and later)")
		maxTimeout  = fs.Duration("max-timeout", 60*time.Second, "cap of a Receive long-poll (MaxTimeoutms)")
		quietModule = fs.Bool("quiet-module-load", false, `no "Preparing modules for first use." progress record from PowerShell`)
		verbose     = fs.Bool("v", false, "log every WinRM exchange")
		strict      = fs.Bool("strict", false, "exit 3 if any request was not understood")

		shutdownDelay  = fs.Duration("shutdown-delay", time.Second, "how long WinRM still answers after a shutdown starts")
		shutdownTime   = fs.Duration("shutdown-time", time.Second, "shutdown servicing phase (WinRM stopped)")
		offTime        = fs.Duration("off-time", time.Second, "how long a restart stays off")
		bootTime       = fs.Duration("boot-time", 2*time.Second, "boot phase before WinRM starts")
		earlyWinRM     = fs.Duration("early-winrm", 0, "phase after WinRM starts while the machine still settles")
		earlyFault     = fs.Bool("early-create-fault", false, "shell creation fails with 0x800703FA during -early-winrm")
		keysClear      = fs.Duration("keys-clear-delay", 0, "clear the pending-reboot keys this long after WinRM is back (0: during the boot)")
		autoReboot     = fs.Duration("auto-reboot-delay", 0, "delay of the automatic second reboot some packages need")
		shutdownSecond = fs.Duration("shutdown-second", time.Second, "what one second of shutdown /t N lasts")
		sysprepTime    = fs.Duration("sysprep-time", 0, "how long sysprep runs before it shuts down")
		drop           = fs.String("drop", "fin", "how stopping WinRM ends connections: fin or rst")
		off            = fs.String("off", "refused", "listener while off: refused or blackhole")
		bootListener   = fs.String("boot-listener", "refused", "listener while booting: refused or 503")
	)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() != 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *stateDir == "" {
		return nil, errors.New("-state-dir is required")
	}
	c := &config{verbose: *verbose, strict: *strict}
	o := &c.opts
	o.StateDir, o.Addr, o.TLSAddr = *stateDir, *listen, *listenTLS
	o.User, o.Password, o.ComputerName = *user, *password, *computer
	o.QuietModuleLoad = *quietModule
	w, err := testguest.ParseWindows(*windows)
	if err != nil {
		return nil, fmt.Errorf("-windows: %w", err)
	}
	o.Windows = w
	if *catalog != "" {
		if o.Packages, err = testguest.LoadCatalog(*catalog); err != nil {
			return nil, fmt.Errorf("-catalog: %w", err)
		}
	}
	if *agentFile != "" {
		if o.AgentImage, err = os.ReadFile(*agentFile); err != nil {
			return nil, fmt.Errorf("-agent-file: %w", err)
		}
	}
	for _, d := range strings.Split(*drives, ",") {
		if d = strings.TrimSpace(d); d != "" {
			o.Drives = append(o.Drives, strings.TrimSuffix(d, ":"))
		}
	}
	for _, a := range strings.Split(*auth, ",") {
		switch strings.ToLower(strings.TrimSpace(a)) {
		case "basic":
			o.Server.Auth |= wsman.AuthBasic
		case "ntlm":
			o.Server.Auth |= wsman.AuthNTLM
		default:
			return nil, fmt.Errorf("-auth: unknown scheme %q (basic, ntlm)", a)
		}
	}
	o.Server.ActivityID = *activityID
	o.Server.MaxTimeout = *maxTimeout
	p := &o.Power
	p.ShutdownDelay, p.ShutdownTime, p.OffTime, p.BootTime = *shutdownDelay, *shutdownTime, *offTime, *bootTime
	p.EarlyWinRM, p.EarlyCreateFault, p.KeysClearDelay = *earlyWinRM, *earlyFault, *keysClear
	p.AutoRebootDelay, p.ShutdownSecond, p.SysprepTime = *autoReboot, *shutdownSecond, *sysprepTime
	if p.Drop, err = choose("-drop", *drop, map[string]wsman.ListenerState{"fin": wsman.ListenerDropFIN, "rst": wsman.ListenerDropRST}); err != nil {
		return nil, err
	}
	if p.Off, err = choose("-off", *off, map[string]wsman.ListenerState{"refused": wsman.ListenerRefused, "blackhole": wsman.ListenerBlackhole}); err != nil {
		return nil, err
	}
	if p.Boot, err = choose("-boot-listener", *bootListener, map[string]wsman.ListenerState{"refused": wsman.ListenerRefused, "503": wsman.ListenerUnavailable}); err != nil {
		return nil, err
	}
	return c, nil
}

func choose(flagName, v string, m map[string]wsman.ListenerState) (wsman.ListenerState, error) {
	if s, ok := m[strings.ToLower(v)]; ok {
		return s, nil
	}
	var names []string
	for k := range m {
		names = append(names, k)
	}
	return 0, fmt.Errorf("%s: %q is not one of %s", flagName, v, strings.Join(names, ", "))
}

func runGuest(args []string, stderr io.Writer) int {
	logger := log.New(stderr, "winbake-guest: ", log.LstdFlags|log.Lmicroseconds)
	c, err := parseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "winbake-guest: %v\n", err)
		}
		return 2
	}
	var unsupported atomic.Int64
	c.opts.Failf = func(format string, args ...any) {
		unsupported.Add(1)
		logger.Printf("unsupported: "+format, args...)
	}
	c.opts.Logf = func(format string, args ...any) { logger.Printf(format, args...) }
	if c.verbose {
		c.opts.Server.Trace = func(e wsman.Exchange) {
			logger.Printf("wsman: %s from %q: HTTP %d (%d bytes in, %d out)", e.Op, e.User, e.Status, len(e.Request), len(e.Response))
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	g, err := testguest.New(c.opts)
	if err != nil {
		logger.Printf("%v", err)
		return 1
	}
	if err := g.Start(); err != nil {
		logger.Printf("%v", err)
		g.Close()
		return 1
	}
	w := g.Machine.WindowsVersion()
	logger.Printf("%s (%s), computer %s, %d boots, state %s, in %s", w.ProductName, w.Version(), g.Machine.ComputerName(), g.Machine.BootCount(), g.Machine.State(), c.opts.StateDir)
	logger.Printf("listening on http://%s", g.Addr())
	if a := g.TLSAddr(); a != "" {
		logger.Printf("listening on https://%s", a)
	}

	<-ctx.Done()
	stop()
	logger.Printf("stopping")
	code := 0
	if err := g.Close(); err != nil {
		logger.Printf("close: %v", err)
		code = 1
	}
	if n := unsupported.Load(); n > 0 {
		logger.Printf("%d requests were not understood", n)
		if c.strict && code == 0 {
			code = 3
		}
	}
	logger.Printf("stopped")
	return code
}
