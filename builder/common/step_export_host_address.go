package common

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/packerbuilderdata"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// Names of the build's generated data (`{{ build "WinbakeHostIP" }}` in a
// template; the winbake provisioners read them too).
const (
	// GeneratedHostIP is the address the guest reaches the host on.
	GeneratedHostIP = "WinbakeHostIP"
	// GeneratedHostBindIP is the host address a host-side server must
	// listen on for the guest to reach it at GeneratedHostIP.
	GeneratedHostBindIP = "WinbakeHostBindIP"
)

// GeneratedDataNames are the names a builder's Prepare returns.
var GeneratedDataNames = []string{GeneratedHostIP, GeneratedHostBindIP}

// User-mode network addresses: QEMU's slirp maps the guest's 10.0.2.2 to
// the host's 127.0.0.1 (unless restrict=on, which winbake never sets).
const (
	UserNetHostIP     = "10.0.2.2"
	UserNetHostBindIP = "127.0.0.1"
)

// HostAddresses returns what StepExportHostAddress exports for a network:
// for "user", 10.0.2.2 and 127.0.0.1; for "bridge", the bridge's first
// IPv4 address as both.
func HostAddresses(network, bridge string) (hostIP, bindIP string, err error) {
	if network != qemuvm.NetworkBridge {
		return UserNetHostIP, UserNetHostBindIP, nil
	}
	ip, err := interfaceIPv4(bridge)
	if err != nil {
		return "", "", fmt.Errorf("bridge: %w", err)
	}
	return ip, ip, nil
}

func interfaceIPv4(name string) (string, error) {
	iface, err := net.InterfaceByName(name)
	if err != nil {
		return "", fmt.Errorf("host interface %q: %w", name, err)
	}
	addrs, err := iface.Addrs()
	if err != nil {
		return "", fmt.Errorf("addresses of %q: %w", name, err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP.String(), nil
		}
	}
	return "", errors.New("host interface " + name + " has no IPv4 address; the guest could not reach the host through it")
}

// StepExportHostAddress puts WinbakeHostIP and WinbakeHostBindIP into the
// build's generated data, where provisioners find them.
//
// Uses state: "ui".
// Produces state: "generated_data".
type StepExportHostAddress struct {
	Network string // NetworkUser (default) or NetworkBridge
	Bridge  string
}

func (s *StepExportHostAddress) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	hostIP, bindIP, err := HostAddresses(s.Network, s.Bridge)
	if err != nil {
		return steps.Halt(state, ui, err)
	}
	data := &packerbuilderdata.GeneratedData{State: state}
	data.Put(GeneratedHostIP, hostIP)
	data.Put(GeneratedHostBindIP, bindIP)
	ui.Say(fmt.Sprintf("The guest reaches the host at %s (host-side servers listen on %s)", hostIP, bindIP))
	return multistep.ActionContinue
}

// Cleanup has nothing to undo.
func (s *StepExportHostAddress) Cleanup(multistep.StateBag) {}
