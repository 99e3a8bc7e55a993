package winsim

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Config drive types and locations: constant.py CD_TYPES, CD_LOCATIONS.
var (
	configDriveTypes     = []string{"iso", "vfat"}
	configDriveLocations = []string{"cdrom", "hdd", "partition"}
)

// cloudbaseConfigDrive is configdrive.py ConfigDriveService (label
// config-2, metadata file openstack\latest\meta_data.json) through
// baseconfigdrive.py BaseConfigDriveService.load and
// osconfigdrive/windows.py WindowsConfigDriveManager.get_config_drive_files.
func (m *Machine) cloudbaseConfigDrive(conf cloudbaseConfig, run CloudbaseInitRun, l *cloudbaseLog) (cloudbaseService, error) {
	const logger = "cloudbaseinit.metadata.services.osconfigdrive.windows"
	const label = "config-2"
	metadataFile := filepath.Join("openstack", "latest", "meta_data.json")

	types, locations, err := configDriveSearch(conf)
	if err != nil {
		return nil, err
	}

	// The CDs that are config drives (_check_for_config_drive: the
	// volume label, lower-cased, and the metadata file).
	var drives []int
	for i, cd := range run.CDs {
		if strings.ToLower(cd.Label) != label {
			continue
		}
		if _, err := os.Stat(filepath.Join(cd.Dir, metadataFile)); err == nil {
			drives = append(drives, i)
		}
	}
	if len(drives) > 1 {
		// cdrom searches drive letters, partition volumes in
		// FindFirstVolumeW's order: which one wins is not modelled.
		m.unsupportedf("cloudbase-init: %d CDs labelled config-2; which one ConfigDriveService reads is not modelled", len(drives))
	}
	cdLetter := func(i int) string { return fmt.Sprintf(`%c:\`, 'D'+i) }
	checkCDs := func(name func(int) string) (int, bool) {
		for i, cd := range run.CDs {
			if contains(drives, i) {
				l.log("INFO", logger, "Config Drive found on %s", name(i))
				return i, true
			}
			l.log("DEBUG", logger, "Looking for a Config Drive with label '%s' on '%s'. Found mismatching label '%s'.", label, name(i), cd.Label)
		}
		return 0, false
	}

	// get_config_drive_files: every (type, location) pair until one
	// finds the drive. The pairs come from Python sets, in no defined
	// order; with the CDs as the only config drives every order finds
	// the same one.
	found, at := false, 0
	for _, t := range configDriveTypes {
		for _, loc := range configDriveLocations {
			if found || !types[t] || !locations[loc] {
				continue
			}
			l.log("DEBUG", logger, "Looking for Config Drive %s in %s with expected label %s", t, loc, label)
			switch loc + "_" + t {
			case "cdrom_iso":
				// _get_config_drive_from_cdrom_drive: the CD-ROM drive letters.
				at, found = checkCDs(cdLetter)
			case "partition_vfat":
				// _get_config_drive_from_volume: every volume
				// (FindFirstVolumeW lists all of a computer's, the CDs'
				// included): C: holds no config drive, then the CDs.
				at, found = checkCDs(func(i int) string { return fmt.Sprintf(`\\?\Volume{%08x-0000-0000-0000-00000000cd00}\`, i+1) })
			case "hdd_iso", "hdd_vfat", "partition_iso":
				// _get_config_drive_from_raw_hdd, _from_vfat,
				// _from_partition: the physical disks.
				if len(run.Disks) > 0 {
					m.unsupportedf("cloudbase-init: searching disks %v for a config drive (%s in %s) is not modelled", run.Disks, t, loc)
				}
				if t == "vfat" && conf.str("mtools_path") == "" {
					m.unsupportedf("cloudbase-init: a vfat config drive search without mtools_path is not modelled")
				}
			default:
				l.log("DEBUG", logger, "Irrelevant type %s in %s location; skip", t, loc)
			}
		}
	}
	if !found {
		return nil, nil
	}
	dir := run.CDs[at].Dir
	l.log("DEBUG", "cloudbaseinit.metadata.services.baseconfigdrive", "Metadata copied to folder: 'C:\\\\Windows\\\\Temp\\\\tmpcfgdrv'")
	get := func(_ context.Context, path string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(path)))
		if err != nil {
			return nil, &cloudbaseNotExisting{what: fmt.Sprintf("[Errno 2] No such file or directory: %q", path)}
		}
		return b, nil
	}
	return &openStackService{svcName: "ConfigDriveService", get: get, meta: map[string]map[string]any{}}, nil
}

// configDriveSearch is _preprocess_options: the config_drive types and
// locations, plus what the deprecated raw_hdd, cdrom and vfat add (all
// three default to true, so by default every type is searched in every
// location).
func configDriveSearch(conf cloudbaseConfig) (types, locations map[string]bool, err error) {
	types, locations = map[string]bool{}, map[string]bool{}
	for _, t := range conf.list("config_drive.types") {
		types[t] = true
	}
	for _, loc := range conf.list("config_drive.locations") {
		locations[loc] = true
	}
	if conf.boolean("config_drive.raw_hdd") {
		types["iso"], locations["hdd"] = true, true
	}
	if conf.boolean("config_drive.cdrom") {
		types["iso"], locations["cdrom"] = true, true
	}
	if conf.boolean("config_drive.vfat") {
		types["vfat"], locations["hdd"] = true, true
	}
	for t := range types {
		if !contains(configDriveTypes, t) {
			return nil, nil, fmt.Errorf("Invalid Config Drive types %v", sortedKeys(types))
		}
	}
	for loc := range locations {
		if !contains(configDriveLocations, loc) {
			return nil, nil, fmt.Errorf("Invalid Config Drive locations %v", sortedKeys(locations))
		}
	}
	return types, locations, nil
}
