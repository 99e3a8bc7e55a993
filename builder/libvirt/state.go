package libvirt

// State keys of the libvirt steps.
const (
	// stateDriver holds the Driver.
	stateDriver = "libvirt_driver"
	// stateVolumes maps the media's state keys ("iso_path", "cd_path",
	// ...) to the volumes they were uploaded to.
	stateVolumes = "libvirt_volumes"
	// stateDiskVolume is the qcow2 system disk volume.
	stateDiskVolume = "libvirt_disk_volume"
	// stateMAC is the NIC's MAC address.
	stateMAC = "libvirt_mac"
	// stateDomainName is the running domain.
	stateDomainName = "libvirt_domain"
	// stateDiskPath is the downloaded disk in the output directory.
	stateDiskPath = "disk_path"
	// stateEFIFirmwareCode is the UEFI code file of the running domain as
	// libvirt reports it in the live XML (a path on the hypervisor).
	stateEFIFirmwareCode = "libvirt_efi_firmware_code"
	// stateArtifact is the finished Artifact.
	stateArtifact = "artifact"
)
