package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Registry locations of the pending-reboot signals (windows-servicing.md §4).
const (
	keyCBS                 = `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing`
	KeyCBSRebootPending    = keyCBS + `\RebootPending`
	KeyCBSRebootInProgress = keyCBS + `\RebootInProgress`
	KeyCBSPackagesPending  = keyCBS + `\PackagesPending`
	KeyWURebootRequired    = `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired`
	KeyWUServicesPending   = `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Services\Pending`
	KeySessionManager      = `HKLM\SYSTEM\CurrentControlSet\Control\Session Manager`
	KeyActiveComputerName  = `HKLM\SYSTEM\CurrentControlSet\Control\ComputerName\ActiveComputerName`
	KeyComputerName        = `HKLM\SYSTEM\CurrentControlSet\Control\ComputerName\ComputerName`
)

// Reasons in PendingReboot.Reasons: strong signals, each means Windows will
// finish servicing only after a reboot.
const (
	// ReasonCBSRebootPending: the KeyCBSRebootPending key exists.
	ReasonCBSRebootPending = "cbs_reboot_pending"
	// ReasonCBSRebootInProgress: the KeyCBSRebootInProgress key exists.
	ReasonCBSRebootInProgress = "cbs_reboot_in_progress"
	// ReasonCBSPackagesPending: the KeyCBSPackagesPending key has subkeys.
	ReasonCBSPackagesPending = "cbs_packages_pending"
	// ReasonWURebootRequired: the KeyWURebootRequired key exists.
	ReasonWURebootRequired = "wu_reboot_required"
)

// Reasons in PendingReboot.SoftReasons: weak signals, reported but not
// counted, because they can persist or reappear after a reboot and would
// make a reboot loop endless (packer#6799, chocolatey/choco#1768).
const (
	// SoftPendingFileRename: the KeySessionManager has a
	// PendingFileRenameOperations or PendingFileRenameOperations2 value.
	SoftPendingFileRename = "pending_file_rename_operations"
	// SoftWUServicesPending: the KeyWUServicesPending key has subkeys.
	SoftWUServicesPending = "wu_services_pending"
	// SoftComputerRename: ActiveComputerName differs from the
	// ComputerName that takes effect at the next boot.
	SoftComputerRename = "computer_rename_pending"
)

// PendingReboot says whether Windows needs a reboot to finish servicing.
type PendingReboot struct {
	// Pending is true when Reasons is not empty.
	Pending bool `json:"pending"`
	// Reasons are the strong signals found (Reason* constants), in a fixed
	// order; never null.
	Reasons []string `json:"reasons"`
	// SoftReasons are the weak signals found (Soft* constants); never null.
	SoftReasons []string `json:"soft_reasons"`
	// ServicingBusy is true while the Windows Modules Installer worker
	// (ServicingWorker) runs: servicing is still finishing after a boot,
	// and the pending-reboot keys may not have settled yet. It is not a
	// reason to reboot.
	ServicingBusy bool `json:"servicing_busy"`
}

// ServicingWorker is the image name of the Windows Modules Installer
// worker, which finishes servicing after a boot.
const ServicingWorker = "TiWorker.exe"

// checkServicing reads the pending-reboot signals and whether servicing is
// still busy.
func checkServicing(sys System) (PendingReboot, error) {
	pr, err := CheckPendingReboot(sys.Registry())
	if err != nil {
		return PendingReboot{}, err
	}
	if pr.ServicingBusy, err = sys.Processes().Running(ServicingWorker); err != nil {
		return PendingReboot{}, err
	}
	return pr, nil
}

// PendingRebootResult is the document of `pending-reboot`.
type PendingRebootResult struct {
	Header
	PendingReboot
}

func runPendingReboot(_ context.Context, e *env, _ []string, _ map[string]string) (document, *usageError) {
	res := &PendingRebootResult{}
	pr, err := checkServicing(e.sys)
	if err != nil {
		res.fail("%v", err)
		return res, nil
	}
	res.PendingReboot = pr
	res.OK = true
	e.progress("pending=%t reasons=%v soft=%v servicing_busy=%t", pr.Pending, pr.Reasons, pr.SoftReasons, pr.ServicingBusy)
	return res, nil
}

// CheckPendingReboot reads the pending-reboot signals. Any registry error
// (other than an absent key or value) fails the whole check: a partial
// answer could wrongly say "no reboot needed".
func CheckPendingReboot(reg Registry) (PendingReboot, error) {
	pr := PendingReboot{Reasons: []string{}, SoftReasons: []string{}}
	exists := func(key string) (bool, error) {
		ok, err := reg.KeyExists(key)
		if err != nil {
			return false, fmt.Errorf("reading %s: %w", key, err)
		}
		return ok, nil
	}
	hasSubKeys := func(key string) (bool, error) {
		if ok, err := exists(key); !ok || err != nil {
			return false, err
		}
		subs, err := reg.SubKeys(key)
		if err != nil {
			return false, fmt.Errorf("listing %s: %w", key, err)
		}
		return len(subs) > 0, nil
	}
	for _, c := range []struct {
		reason string
		check  func(string) (bool, error)
		key    string
		soft   bool
	}{
		{ReasonCBSRebootPending, exists, KeyCBSRebootPending, false},
		{ReasonCBSRebootInProgress, exists, KeyCBSRebootInProgress, false},
		{ReasonCBSPackagesPending, hasSubKeys, KeyCBSPackagesPending, false},
		{ReasonWURebootRequired, exists, KeyWURebootRequired, false},
		{SoftWUServicesPending, hasSubKeys, KeyWUServicesPending, true},
	} {
		found, err := c.check(c.key)
		if err != nil {
			return PendingReboot{}, err
		}
		if found && c.soft {
			pr.SoftReasons = append(pr.SoftReasons, c.reason)
		} else if found {
			pr.Reasons = append(pr.Reasons, c.reason)
		}
	}

	if ok, err := exists(KeySessionManager); err != nil {
		return PendingReboot{}, err
	} else if ok {
		names, err := reg.ValueNames(KeySessionManager)
		if err != nil {
			return PendingReboot{}, fmt.Errorf("listing the values of %s: %w", KeySessionManager, err)
		}
		if slices.ContainsFunc(names, func(n string) bool {
			return strings.EqualFold(n, "PendingFileRenameOperations") || strings.EqualFold(n, "PendingFileRenameOperations2")
		}) {
			pr.SoftReasons = append(pr.SoftReasons, SoftPendingFileRename)
		}
	}

	active, aok, err := reg.String(KeyActiveComputerName, "ComputerName")
	if err != nil {
		return PendingReboot{}, fmt.Errorf("reading %s ComputerName: %w", KeyActiveComputerName, err)
	}
	next, nok, err := reg.String(KeyComputerName, "ComputerName")
	if err != nil {
		return PendingReboot{}, fmt.Errorf("reading %s ComputerName: %w", KeyComputerName, err)
	}
	if aok && nok && !strings.EqualFold(active, next) {
		pr.SoftReasons = append(pr.SoftReasons, SoftComputerRename)
	}

	pr.Pending = len(pr.Reasons) > 0
	return pr, nil
}
