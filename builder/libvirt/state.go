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
	// stateNVRAMPath is the domain's UEFI variable store on the hypervisor,
	// from the live XML.
	stateNVRAMPath = "libvirt_nvram_path"
	// stateDomainUUID is the domain's UUID (libvirt keeps the TPM state
	// under it).
	stateDomainUUID = "libvirt_domain_uuid"
	// stateKeptEFIVars and stateKeptTPMState are set when the UEFI
	// variables and the TPM state were copied into the output directory.
	stateKeptEFIVars  = "libvirt_kept_efivars"
	stateKeptTPMState = "libvirt_kept_tpm_state"
	// stateArtifact is the finished Artifact.
	stateArtifact = "artifact"
)
