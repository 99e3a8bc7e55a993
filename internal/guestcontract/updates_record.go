package guestcontract

import (
	"fmt"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/agent"
)

// UpdatesRecord is the content of UpdatesRecordPath.
type UpdatesRecord struct {
	// Version of this format.
	Version int `json:"version"`
	// Finished is when winbake-updates finished (UTC).
	Finished time.Time `json:"finished"`
	// Reboots winbake-updates started, and reboots seen in all (with the
	// ones Windows did by itself).
	Reboots         int `json:"reboots"`
	RebootsObserved int `json:"reboots_observed"`
	// DeferredToFirstBoot is true when failed packages stay in the image
	// for a retry at first boot.
	DeferredToFirstBoot bool                   `json:"deferred_to_first_boot"`
	Packages            []UpdatesRecordPackage `json:"packages"`
}

// UpdatesRecordPackage is one package's record.
type UpdatesRecordPackage struct {
	File string `json:"file"`
	KB   string `json:"kb,omitempty"`
	// Identity is the CBS identity DISM lists the package under, when the
	// package file names it.
	Identity string      `json:"identity,omitempty"`
	Kind     PackageKind `json:"kind"`
	SHA256   string      `json:"sha256"`
	Bytes    int64       `json:"bytes"`
	// Result: installed, already_installed, not_applicable, failed,
	// deferred (failed, retried at first boot), pending.
	Result string `json:"result"`
	// Outcome and ExitCode are the last install's (winbake-agent's
	// classification and the DISM exit code).
	Outcome     agent.Outcome `json:"outcome,omitempty"`
	ExitCode    uint32        `json:"exit_code"`
	ExitCodeHex string        `json:"exit_code_hex"`
	Attempts    int           `json:"attempts"`
	// Reboots is how many reboots the package took to finish.
	Reboots int    `json:"reboots"`
	Message string `json:"message,omitempty"`
}

// PackageKind is what an update package is, which decides the order
// winbake-updates installs packages in.
type PackageKind int

// Kinds, in install order.
const (
	KindServicingStack PackageKind = iota
	KindCheckpoint
	KindCumulative
	KindDotNet
	KindOther
)

var kindByName = map[string]PackageKind{
	"servicing_stack": KindServicingStack,
	"checkpoint":      KindCheckpoint,
	"cumulative":      KindCumulative,
	"dotnet":          KindDotNet,
	"other":           KindOther,
}

func (k PackageKind) String() string {
	for n, v := range kindByName {
		if v == k {
			return n
		}
	}
	return "other"
}

// MarshalText writes the kind's name.
func (k PackageKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a kind's name.
func (k *PackageKind) UnmarshalText(b []byte) error {
	v, ok := kindByName[string(b)]
	if !ok {
		return fmt.Errorf("unknown package kind %q", b)
	}
	*k = v
	return nil
}

// PackageKindNamed returns the kind a name (as the record writes it:
// servicing_stack, checkpoint, cumulative, dotnet, other) stands for.
func PackageKindNamed(name string) (PackageKind, bool) {
	k, ok := kindByName[name]
	return k, ok
}
