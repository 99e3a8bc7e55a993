package verify

import (
	"context"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// stepMetadataService serves the instance's metadata host-side on
// 127.0.0.1; the guest reaches it through QEMU's user network as
// http://10.0.2.2:<port>/.
//
// Uses state: "ui", stateInstance.
// Produces state: stateServer.
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
		return halt(state, ui, fmt.Errorf("metadata_service: listening on 127.0.0.1: %w", err))
	}
	path := "/openstack/latest/meta_data.json"
	if s.Mode == ModeMAAS {
		path = "/MAAS/metadata/" + maasVersion + "/meta-data/"
	}
	ui.Say(fmt.Sprintf("Metadata service (%s) for the guest at http://10.0.2.2:%d%s", s.Mode, port, path))
	state.Put(stateServer, s.server)
	return multistep.ActionContinue
}

func (s *stepMetadataService) Cleanup(multistep.StateBag) {
	if s.server != nil {
		s.server.Stop()
	}
}
