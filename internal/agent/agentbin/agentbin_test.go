package agentbin

import (
	"bytes"
	"debug/pe"
	"testing"
)

// TestEmbeddedAgent fails (it does not skip) when the agent was not built,
// so a plugin without its agent cannot pass the tests.
func TestEmbeddedAgent(t *testing.T) {
	b, err := Windows()
	if err != nil {
		t.Fatalf("%v\n(run `bash scripts/build-agent.sh` or `make agent` from the repository root before testing)", err)
	}
	if !bytes.HasPrefix(b, []byte("MZ")) {
		t.Fatalf("embedded %s does not start with MZ", FileName)
	}
	f, err := pe.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("embedded %s is not a PE file: %v", FileName, err)
	}
	defer f.Close()
	if f.Machine != pe.IMAGE_FILE_MACHINE_AMD64 {
		t.Errorf("embedded %s is for machine %#x, want AMD64", FileName, f.Machine)
	}
	if oh, ok := f.OptionalHeader.(*pe.OptionalHeader64); !ok || oh.Subsystem != pe.IMAGE_SUBSYSTEM_WINDOWS_CUI {
		t.Errorf("embedded %s is not a 64-bit console program (%T)", FileName, f.OptionalHeader)
	}
	if len(b) > 16<<20 {
		t.Errorf("embedded %s is %d bytes; was it built without -ldflags \"-s -w\"?", FileName, len(b))
	}
}
