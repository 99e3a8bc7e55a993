# Installs winbake's stand-in Windows (make standin-iso) into a golden qcow2
# disk, then generalizes a copy of it with sysprep, the way a real Windows
# image is prepared for OpenStack or MAAS:
#   packer build -var winrm_password=... example/sysprep-standin.pkr.hcl
# The golden image stays in output_dir unchanged; the generalized one goes to
# sysprep_dir.
packer {
  required_plugins {
    winbake = {
      source  = "github.com/winbake/winbake"
      version = ">= 0.1.0"
    }
  }
}

variable "iso" {
  type    = string
  default = "build/standin/winbake-standin.iso"
}

variable "firmware" {
  type    = string
  default = "uefi"
}

variable "tpm" {
  type    = bool
  default = true
}

variable "output_dir" {
  type    = string
  default = "output/standin-golden"
}

variable "sysprep_dir" {
  type    = string
  default = "output/standin-generalized"
}

# A cloudbase-init MSI (CloudbaseInitSetup_Stable_x64.msi) to install before
# sysprep; none by default.
variable "cloudbase_init_msi" {
  type    = string
  default = ""
}

# The build account's password, shared by the builder (which sets the
# account up) and sysprep (which logs on with it).
variable "winrm_password" {
  type      = string
  sensitive = true
}

# WinRM over HTTPS with a certificate made for the build, also through the
# port forward on 127.0.0.1 (a bridge always gets it).
variable "winrm_use_ssl" {
  type    = bool
  default = false
}

source "winbake-qemu" "standin" {
  iso_url          = var.iso
  iso_checksum     = "none"
  image_name       = "Windows Server 2022 SERVERSTANDARDCORE"
  firmware         = var.firmware
  tpm              = var.tpm
  accelerator      = "tcg"
  cpus             = 1
  memory           = 1024
  disk_interface   = "sata"
  net_device       = "e1000"
  output_directory = var.output_dir
  vm_name          = "standin"
  winrm_password   = var.winrm_password
  winrm_use_ssl    = var.winrm_use_ssl
  winrm_timeout    = "5m"
  shutdown_timeout = "2m"
}

build {
  sources = ["source.winbake-qemu.standin"]

  post-processor "winbake-sysprep" {
    winrm_password      = var.winrm_password
    accelerator         = "tcg"
    cpus                = 1
    memory              = 1024
    output_directory    = var.sysprep_dir
    winrm_timeout       = "5m"
    timeout             = "10m"
    keep_input_artifact = true

    dynamic "cloudbase_init" {
      for_each = var.cloudbase_init_msi == "" ? [] : [var.cloudbase_init_msi]
      content {
        msi               = cloudbase_init.value
        metadata_services = ["cloudbaseinit.metadata.services.configdrive.ConfigDriveService"]
      }
    }
  }
}
