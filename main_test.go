package main

import (
	"encoding/json"
	"os/exec"
	"reflect"
	"sort"
	"testing"
)

// The plugin binary must describe itself the way Packer expects: API
// version x5.0, protocol v2, and every registered component.
func TestDescribe(t *testing.T) {
	out, err := exec.Command("go", "run", ".", "describe").Output()
	if err != nil {
		t.Fatalf("go run . describe: %v", err)
	}
	var d struct {
		APIVersion      string   `json:"api_version"`
		ProtocolVersion string   `json:"protocol_version"`
		SDKVersion      string   `json:"sdk_version"`
		Builders        []string `json:"builders"`
		Provisioners    []string `json:"provisioners"`
		PostProcessors  []string `json:"post_processors"`
	}
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatalf("describe output is not JSON: %v\n%s", err, out)
	}
	if d.APIVersion != "x5.0" || d.ProtocolVersion != "v2" || d.SDKVersion != "0.6.10" {
		t.Errorf("describe: api_version %q protocol_version %q sdk_version %q; want x5.0, v2, 0.6.10", d.APIVersion, d.ProtocolVersion, d.SDKVersion)
	}
	// One component per line, sorted as describe prints them.
	wantBuilders := []string{
		"libvirt",
		"qemu",
	}
	wantProvisioners := []string{
		"updates",
	}
	wantPostProcessors := []string{
		"compress",
		"glance",
		"maas",
		"sysprep",
		"verify",
	}
	for _, c := range []struct {
		kind      string
		got, want []string
	}{
		{"builders", d.Builders, wantBuilders},
		{"provisioners", d.Provisioners, wantProvisioners},
		{"post_processors", d.PostProcessors, wantPostProcessors},
	} {
		got, want := append([]string(nil), c.got...), append([]string(nil), c.want...)
		sort.Strings(got)
		sort.Strings(want)
		if len(got) != len(want) || (len(got) > 0 && !reflect.DeepEqual(got, want)) {
			t.Errorf("%s = %v, want %v", c.kind, c.got, c.want)
		}
	}
}
