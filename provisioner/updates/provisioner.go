package updates

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2/hcldec"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/agent"
	"github.com/winbake/packer-plugin-winbake/internal/fetch"
	"github.com/winbake/packer-plugin-winbake/internal/guestcontract"
)

// Provisioner is winbake-updates.
type Provisioner struct {
	config Config

	// poll is the pause between retries of agent calls (tests shorten it).
	poll time.Duration
}

var _ packersdk.Provisioner = (*Provisioner)(nil)

// ConfigSpec returns the HCL2 spec of the configuration.
func (p *Provisioner) ConfigSpec() hcldec.ObjectSpec { return p.config.FlatMapstructure().HCL2Spec() }

// Prepare decodes and checks the configuration.
func (p *Provisioner) Prepare(raws ...interface{}) error { return p.config.Prepare(raws...) }

// Generated data the winbake builders export (builder/common).
const (
	generatedHostIP     = "WinbakeHostIP"
	generatedHostBindIP = "WinbakeHostBindIP"
)

// Provision installs the packages and reboots until nothing is pending.
func (p *Provisioner) Provision(ctx context.Context, ui packersdk.Ui, comm packersdk.Communicator, generatedData map[string]interface{}) error {
	c := &p.config
	pkgs, err := c.resolvePackages(ctx, ui)
	if err != nil {
		return err
	}
	order(pkgs)
	ui.Say(fmt.Sprintf("winbake-updates: %d package(s), in install order:", len(pkgs)))
	for i, pk := range pkgs {
		kb := pk.KB
		if kb == "" {
			kb = "-"
		}
		ui.Message(fmt.Sprintf("%2d. %-16s %-10s %s (%d MiB, kind from %s)", i+1, pk.Kind, kb, pk.Name, pk.Size>>20, pk.KindSource))
	}
	poll := p.poll
	if poll == 0 {
		poll = 5 * time.Second
	}
	g := &guest{comm: comm, ui: ui, wait: c.RestartTimeout, poll: poll, long: c.InstallTimeout}
	g.winrmHost, g.winrmPort = communicatorAddress(generatedData)
	if err := g.ensureAgent(ctx); err != nil {
		return err
	}
	if err := p.deliver(ctx, ui, g, pkgs, generatedData); err != nil {
		return err
	}
	run := &installRun{cfg: c, ui: ui, g: g, poll: poll}
	for _, pk := range pkgs {
		run.states = append(run.states, &pkgState{pkg: pk, guestPath: c.guestPath(pk)})
	}
	run.chainCheckpoints()
	loopErr := run.loop(ctx)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	failed := run.failed()
	var deferErr error
	if len(failed) > 0 && c.DeferFailed && loopErr == nil {
		deferErr = run.deferFailed(ctx, failed)
	}
	if err := run.removeDelivered(ctx); err != nil && loopErr == nil {
		loopErr = err
	}
	if err := run.writeManifest(ctx); err != nil && loopErr == nil {
		loopErr = err
	}
	run.summary()
	switch {
	case loopErr != nil:
		return loopErr
	case deferErr != nil:
		return deferErr
	case len(failed) > 0 && !c.DeferFailed:
		return fmt.Errorf("winbake-updates: %d package(s) failed: %s (see the summary; set defer_failed = true to keep them for a retry at first boot)", len(failed), names(failed))
	}
	return nil
}

// resolvePackages expands the globs and blocks into described packages.
func (c *Config) resolvePackages(ctx context.Context, ui packersdk.Ui) ([]*Package, error) {
	var out []*Package
	seen := map[string]string{}
	add := func(path, kind, checksum, field string) error {
		abs, err := filepath.Abs(path)
		if err != nil {
			return err
		}
		if _, dup := seen[abs]; dup {
			return nil
		}
		pk, err := describe(abs, kind)
		if err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
		if checksum != "" && !strings.EqualFold(strings.TrimPrefix(checksum, "sha256:"), pk.SHA256) {
			return fmt.Errorf("%s: %s has SHA-256 %s, the checksum says %s", field, path, pk.SHA256, checksum)
		}
		for _, o := range out {
			if strings.EqualFold(o.Name, pk.Name) {
				return fmt.Errorf("%s: %s and %s have the same file name; the guest keeps packages by name", field, o.LocalPath, pk.LocalPath)
			}
		}
		seen[abs] = field
		out = append(out, pk)
		return nil
	}
	for i, g := range c.Packages {
		matches, err := filepath.Glob(g)
		if err != nil {
			return nil, fmt.Errorf("packages[%d] %q: bad pattern: %w", i, g, err)
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("packages[%d] %q matches no file", i, g)
		}
		sort.Strings(matches)
		for _, m := range matches {
			if err := add(m, "", "", fmt.Sprintf("packages[%d]", i)); err != nil {
				return nil, err
			}
		}
	}
	for i, b := range c.PackageBlocks {
		field := fmt.Sprintf("package[%d]", i)
		path := b.Path
		if b.URL != "" {
			var err error
			if path, err = fetch.Download(ctx, ui, "winbake-updates", b.URL, b.Checksum); err != nil {
				return nil, fmt.Errorf("%s.url: %w", field, err)
			}
		}
		if err := add(path, b.Kind, b.Checksum, field); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// deliver puts every package into the guest directory.
func (p *Provisioner) deliver(ctx context.Context, ui packersdk.Ui, g *guest, pkgs []*Package, generatedData map[string]interface{}) error {
	c := &p.config
	var total int64
	for _, pk := range pkgs {
		total += pk.Size
	}
	if c.Delivery == "winrm" {
		for i, pk := range pkgs {
			ui.Say(fmt.Sprintf("Uploading %s over WinRM (%d of %d, %d MiB)", pk.Name, i+1, len(pkgs), pk.Size>>20))
			if err := uploadFile(ctx, g.comm, c.guestPath(pk), pk, c.InstallTimeout); err != nil {
				return err
			}
		}
		return nil
	}
	hostIP, bindIP, source := hostAddresses(ctx, c, generatedData, g)
	if hostIP == "" {
		return errors.New("winbake-updates: cannot tell which address the guest reaches the build host at: the builder exports no WinbakeHostIP and the communicator host is unknown; set http_address (or delivery = \"winrm\")")
	}
	srv, err := startServer(bindIP, pkgs, ui)
	if err != nil {
		return err
	}
	defer srv.Close()
	ui.Say(fmt.Sprintf("Serving %d package(s), %d MiB, to the guest at %s (listening on %s; address from %s)", len(pkgs), total>>20, hostIP, srv.ln.Addr(), source))
	start := time.Now()
	for i, pk := range pkgs {
		var res agent.FetchResult
		dest := c.guestPath(pk)
		err := g.run(ctx, &res, "fetch", srv.URL(hostIP, i, pk), dest, "--sha256", pk.SHA256, "--size", fmt.Sprint(pk.Size))
		if err != nil {
			return fmt.Errorf("delivering %s: %w", pk.Name, err)
		}
		if !res.OK {
			return fmt.Errorf("delivering %s to the guest over HTTP from %s failed: %s (a firewall between guest and host? try http_address or delivery = \"winrm\")", pk.Name, hostIP, res.Error)
		}
		state := "downloaded"
		if res.AlreadyPresent {
			state = "already in the guest"
		}
		ui.Message(fmt.Sprintf("[%d/%d] %s %s, SHA-256 verified", i+1, len(pkgs), pk.Name, state))
	}
	if secs := time.Since(start).Seconds(); secs > 0 {
		ui.Say(fmt.Sprintf("Delivered %d MiB in %.1fs (%.1f MiB/s)", total>>20, secs, float64(total)/(1<<20)/secs))
	}
	return nil
}

// communicatorAddress is where Packer's communicator reaches the guest
// (the build's Host and Port), or "" and 0 when the build does not say.
func communicatorAddress(data map[string]interface{}) (string, int) {
	host, _ := data["Host"].(string)
	var port int
	switch v := data["Port"].(type) {
	case int:
		port = v
	case int64:
		port = int(v)
	case float64:
		port = int(v)
	}
	if host == "" || port <= 0 {
		return "", 0
	}
	return host, port
}

// guestPath is where a package goes in the guest. Cumulative updates and
// their checkpoints share a folder of their own: DISM, pointed at the
// target .msu, takes the checkpoints it needs from the target's folder,
// which should hold nothing else.
func (c *Config) guestPath(pk *Package) string {
	if pk.Kind == guestcontract.KindCumulative || pk.Kind == guestcontract.KindCheckpoint {
		return c.GuestDirectory + `\cumulative\` + pk.Name
	}
	return c.GuestDirectory + `\` + pk.Name
}

// hostAddresses picks the address the guest reaches the host at, and
// where the server listens: the builder's generated data, else
// http_address, else how the guest sees the WinRM client (winbake-agent
// winrm-client), else the host's route towards the communicator host.
func hostAddresses(ctx context.Context, c *Config, data map[string]interface{}, g *guest) (hostIP, bindIP, source string) {
	get := func(k string) string {
		s, _ := data[k].(string)
		if net.ParseIP(s) == nil { // absent, or Packer's "ERR_..." / placeholder text
			return ""
		}
		return s
	}
	commHost, _ := data["Host"].(string)
	switch {
	case get(generatedHostIP) != "":
		hostIP, source = get(generatedHostIP), "the builder's WinbakeHostIP"
	case c.HTTPAddress != "":
		hostIP, source = c.HTTPAddress, "http_address"
	default:
		port := 5985
		switch v := data["Port"].(type) {
		case int:
			port = v
		case int64:
			port = int(v)
		case float64:
			port = int(v)
		}
		var wc agent.WinRMClientResult
		if err := g.run(ctx, &wc, "winrm-client", "--port", fmt.Sprint(port)); err == nil && wc.OK && len(wc.Clients) > 0 {
			hostIP, source = wc.Clients[0], "the guest's view of the WinRM connection"
			break
		}
		if commHost != "" {
			if conn, err := net.Dial("udp", net.JoinHostPort(commHost, fmt.Sprint(port))); err == nil {
				hostIP = conn.LocalAddr().(*net.UDPAddr).IP.String()
				conn.Close()
				source = "the route to the communicator host " + commHost
			}
		}
	}
	switch {
	case c.HTTPBindAddress != "":
		bindIP = c.HTTPBindAddress
	case get(generatedHostBindIP) != "":
		bindIP = get(generatedHostBindIP)
	case isLocalAddress(hostIP):
		bindIP = hostIP
	case commHost != "" && net.ParseIP(commHost) != nil && net.ParseIP(commHost).IsLoopback():
		// The guest's WinRM is forwarded to this host's loopback (NAT):
		// the guest's gateway address leads back to loopback too.
		bindIP = "127.0.0.1"
	default:
		bindIP = "0.0.0.0"
	}
	return hostIP, bindIP, source
}

// isLocalAddress reports whether ip is an address of this host.
func isLocalAddress(ip string) bool {
	want := net.ParseIP(ip)
	if want == nil {
		return false
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(want) {
			return true
		}
	}
	return false
}

func names(states []*pkgState) string {
	var n []string
	for _, s := range states {
		n = append(n, s.pkg.Name)
	}
	return strings.Join(n, ", ")
}
