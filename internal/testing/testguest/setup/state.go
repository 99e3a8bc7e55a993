package setup

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/winsim"
)

// Phases of State.Phase.
const (
	// PhaseSpecialize: windowsPE applied the image; the next boot from disk
	// runs specialize and oobeSystem.
	PhaseSpecialize = "specialize"
	// PhaseOOBE: specialize ran; oobeSystem is next.
	PhaseOOBE = "oobeSystem"
	// PhaseComplete: Setup finished.
	PhaseComplete = "complete"
)

// Paths on the installed Windows volume.
const (
	StatePath      = "winbake/state.json"
	KernelPath     = "winbake/boot/vmlinuz"
	InitrdPath     = "winbake/boot/initrd.img"
	PantherPath    = "Windows/Panther/unattend.xml"
	System32Path   = "Windows/System32"
	stateFileMode  = 0o644
	stateVersion   = 1
	historyEntries = 200
)

// State is the installed Windows as the stand-in records it, in StatePath
// on the Windows partition.
type State struct {
	Version  int    `json:"version"`
	Phase    string `json:"phase"`
	Firmware string `json:"firmware"`
	// SecureBoot: the firmware enforced Secure Boot when Setup ran.
	SecureBoot bool `json:"secure_boot,omitempty"`

	Image struct {
		Name      string `json:"name"`
		Index     int    `json:"index"`
		EditionID string `json:"edition_id"`
		Version   string `json:"version"`
	} `json:"image"`
	// AnswerFile is where Setup found autounattend.xml, e.g. `D:\autounattend.xml`.
	AnswerFile string `json:"answer_file"`
	// Drivers are the driver folders Setup added to the driver store
	// (viostor, vioscsi, NetKVM, ...), lower case.
	Drivers []string `json:"drivers"`
	// Partitions is the layout Setup created.
	Partitions []PartitionRecord `json:"partitions"`

	ComputerName string    `json:"computer_name"`
	TimeZone     string    `json:"time_zone"`
	Accounts     []Account `json:"accounts"`
	AutoLogon    struct {
		Username  string `json:"username"`
		Remaining int    `json:"remaining"`
	} `json:"autologon"`

	Registry map[string]string `json:"registry"`
	// WinRM is the WinRM service's configuration with the firewall
	// rules, the network's profile and the machine's certificates, which
	// the first logon's commands, cloudbase-init and commands over WinRM
	// change (winsim.WinRMConfig).
	WinRM WinRMState `json:"winrm"`

	// QemuGuestAgent: the QEMU guest agent service (QEMU-GA) is
	// installed (virtio-win's qemu-ga-x86_64.msi).
	QemuGuestAgent bool `json:"qemu_guest_agent,omitempty"`

	// Commands are the RunSynchronous and FirstLogonCommands run so far.
	Commands []CommandRecord `json:"commands"`

	// InstalledPackages and PendingReboot are for the simulated Windows
	// (updates installed over WinRM).
	InstalledPackages []string `json:"installed_packages"`
	PendingReboot     bool     `json:"pending_reboot"`
	// Sysprep is "" or "generalized" (sysprep /generalize ran; the next
	// boot runs specialize and oobeSystem again).
	Sysprep string `json:"sysprep"`

	Boots   int      `json:"boots"`
	History []string `json:"history"`
}

// PartitionRecord is one partition Setup created.
type PartitionRecord struct {
	Number int    `json:"number"`
	Type   string `json:"type"`
	SizeMB uint64 `json:"size_mb"`
	Format string `json:"format,omitempty"`
	Label  string `json:"label,omitempty"`
	TypeID string `json:"type_id"`
}

// WinRMState is the WinRM service configuration and what it depends on.
type WinRMState struct {
	winsim.WinRMConfig
	// LocalAccountTokenFilterPolicy is the registry value of that name.
	LocalAccountTokenFilterPolicy bool `json:"local_account_token_filter_policy"`
}

// CommandRecord is a command the stand-in ran.
type CommandRecord struct {
	Pass        string `json:"pass"`
	Order       int    `json:"order"`
	CommandLine string `json:"command_line"`
	// Outcome says what the stand-in did with it.
	Outcome string `json:"outcome"`
}

// Note appends a history line.
func (s *State) Note(format string, args ...any) {
	s.History = append(s.History, time.Now().UTC().Format(time.RFC3339)+" "+fmt.Sprintf(format, args...))
	if len(s.History) > historyEntries {
		s.History = s.History[len(s.History)-historyEntries:]
	}
}

// LoadState reads the state from the Windows volume mounted at root.
func LoadState(root string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(root, StatePath))
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", StatePath, err)
	}
	if s.Registry == nil {
		s.Registry = map[string]string{}
	}
	return &s, nil
}

// Save writes the state to the volume mounted at root, durably (write,
// fsync, rename, fsync of the directory).
func (s *State) Save(root string) error {
	s.Version = stateVersion
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(root, StatePath)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".new"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, stateFileMode)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	// FAT keeps the directory entries and the allocation table apart from
	// the file: flush everything, so a VM killed right after still has the
	// state on its disk.
	syscall.Sync()
	return nil
}
