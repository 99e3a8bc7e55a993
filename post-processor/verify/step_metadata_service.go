package verify

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/winbake/packer-plugin-winbake/internal/qemuvm"
	"github.com/winbake/packer-plugin-winbake/internal/steps"
)

// Where the guest finds the metadata service: the link-local address
// clouds serve it on, inside the user network the instance gets.
var (
	MetadataAddr    = netip.MustParseAddr("169.254.169.254")
	metadataNetwork = netip.MustParsePrefix("169.254.169.0/24")
)

// stepMetadataService serves the instance's metadata host-side on
// 127.0.0.1 and has QEMU's user network (169.254.169.0/24) carry the
// guest's connections to http://169.254.169.254/ to it, where
// cloudbase-init looks by default.
//
// Uses state: "ui", stateInstance.
// Produces state: stateServer, StateUserNetwork.
type stepMetadataService struct {
	Enabled bool
	Mode    string

	server *metadataServer
}

func (s *stepMetadataService) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	if !s.Enabled {
		return multistep.ActionContinue
	}
	ui := state.Get("ui").(packersdk.Ui)
	inst := state.Get(stateInstance).(*instance)
	s.server = &metadataServer{Mode: s.Mode, Metadata: inst.Metadata, MAC: inst.MAC}
	port, err := s.server.Start()
	if err != nil {
		return steps.Halt(state, ui, fmt.Errorf("metadata_service: listening on 127.0.0.1: %w", err))
	}
	path := "/openstack/latest/meta_data.json"
	if s.Mode == ModeMAAS {
		path = "/MAAS/metadata/" + maasVersion + "/meta-data/"
	}
	state.Put(qemuvm.StateUserNetwork, &qemuvm.UserNetwork{Net: metadataNetwork, GuestForwards: []qemuvm.GuestForward{
		{Addr: MetadataAddr, Port: 80, HostAddr: fmt.Sprintf("127.0.0.1:%d", port)},
	}})
	ui.Say(fmt.Sprintf("Metadata service (%s) for the guest at http://%s%s (served on 127.0.0.1:%d)", s.Mode, MetadataAddr, path, port))
	state.Put(stateServer, s.server)
	return multistep.ActionContinue
}

func (s *stepMetadataService) Cleanup(multistep.StateBag) {
	if s.server != nil {
		s.server.Stop()
	}
}
