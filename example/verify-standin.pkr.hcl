# Installs winbake's stand-in Windows (make standin-iso) into a golden disk,
# generalizes a copy with sysprep, and verifies the generalized image by
# booting a throwaway overlay of it with a config drive and the metadata
# service at http://169.254.169.254/, as OpenStack would:
#   packer build -var winrm_password=... example/verify-standin.pkr.hcl
# The stand-in's msiexec installs any non-empty file named
# CloudbaseInitSetup*.msi as cloudbase-init's MSI does; its cloudbase-init
# runs the plugins listed below.
# The report goes beside the generalized image (sysprep_dir).
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

# A cloudbase-init MSI to install before sysprep; none by default, and then
# verification fails: nothing reads the config drive or the metadata
# service.
variable "cloudbase_init_msi" {
  type    = string
  default = ""
}

variable "winrm_password" {
  type      = string
  sensitive = true
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
  winrm_timeout    = "5m"
  shutdown_timeout = "2m"
}

build {
  sources = ["source.winbake-qemu.standin"]

  post-processors {
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
          msi = cloudbase_init.value
          metadata_services = [
            "cloudbaseinit.metadata.services.httpservice.HttpService",
            "cloudbaseinit.metadata.services.configdrive.ConfigDriveService",
          ]
          plugins = [
            "cloudbaseinit.plugins.common.sethostname.SetHostNamePlugin",
            "cloudbaseinit.plugins.windows.createuser.CreateUserPlugin",
            "cloudbaseinit.plugins.common.sshpublickeys.SetUserSSHPublicKeysPlugin",
            "cloudbaseinit.plugins.common.userdata.UserDataPlugin",
            "cloudbaseinit.plugins.common.setuserpassword.SetUserPasswordPlugin",
          ]
        }
      }
    }

    post-processor "winbake-verify" {
      accelerator         = "tcg"
      cpus                = 1
      memory              = 1024
      hostname            = "verify-standin"
      metadata_service    = true
      check_password_post = var.cloudbase_init_msi != ""
      build_passwords     = [var.winrm_password]
      timeout             = "10m"
      winrm_timeout       = "2m"
    }
  }
}
