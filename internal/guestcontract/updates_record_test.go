package guestcontract

import (
	"encoding/json"
	"strings"
	"testing"
)

// Every kind is written by its name and read back as itself: the record
// carries kinds as names, not as the numbers that order the install.
func TestPackageKindRoundTrip(t *testing.T) {
	for _, k := range []PackageKind{KindServicingStack, KindCheckpoint, KindCumulative, KindDotNet, KindOther} {
		b, err := json.Marshal(UpdatesRecordPackage{Kind: k})
		if err != nil {
			t.Fatal(err)
		}
		var back UpdatesRecordPackage
		if err := json.Unmarshal(b, &back); err != nil || back.Kind != k {
			t.Errorf("kind %d: %s read back as %d (%v)", k, b, back.Kind, err)
		}
		if named, ok := PackageKindNamed(k.String()); !ok || named != k {
			t.Errorf("PackageKindNamed(%q) = %d, %v; want %d", k.String(), named, ok, k)
		}
	}
	var r UpdatesRecord
	err := json.Unmarshal([]byte(`{"packages":[{"file":"x.msu","kind":"driver"}]}`), &r)
	if err == nil || !strings.Contains(err.Error(), `unknown package kind "driver"`) {
		t.Errorf("a record with kind \"driver\" read with error %v, want unknown package kind", err)
	}
}
