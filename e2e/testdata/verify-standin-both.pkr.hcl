# One golden stand-in, two generalized copies verified as OpenStack boots
# them (config drive and metadata service at 169.254.169.254): without
# cloudbase-init (verification fails) and with it (every check passes).
# Packer runs the second post-processor chain although the first failed.
packer {
  required_plugins {
    winbake = {
      source  = "github.com/winbake/winbake"
      version = ">= 0.1.0"
    }
  }
}

variable "iso" {
  type = string
}

variable "output_dir" {
  type = string
}

variable "plain_dir" {
  type = string
}

variable "cloudbase_dir" {
  type = string
}

variable "cloudbase_init_msi" {
  type = string
}

variable "winrm_password" {
  type      = string
  sensitive = true
}

source "winbake-qemu" "standin" {
  iso_url          = var.iso
  iso_checksum     = "none"
  image_name       = "Windows Server 2022 SERVERSTANDARDCORE"
  firmware         = "uefi"
  tpm              = true
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
      output_directory    = var.plain_dir
      winrm_timeout       = "5m"
      timeout             = "10m"
      keep_input_artifact = true
    }

    post-processor "winbake-verify" {
      accelerator      = "tcg"
      cpus             = 1
      memory           = 1024
      hostname         = "verify-standin"
      metadata_service = true
      build_passwords  = [var.winrm_password]
      timeout          = "5m"
      winrm_timeout    = "1m"
    }
  }

  post-processors {
    post-processor "winbake-sysprep" {
      winrm_password      = var.winrm_password
      accelerator         = "tcg"
      cpus                = 1
      memory              = 1024
      output_directory    = var.cloudbase_dir
      winrm_timeout       = "5m"
      timeout             = "10m"
      keep_input_artifact = true

      cloudbase_init {
        msi = var.cloudbase_init_msi
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
          # An HTTPS listener with a certificate of its own at first boot:
          # the instance keeps WinRM over HTTPS (winbake-verify's
          # keep_winrm defaults to true from the manifest).
          "cloudbaseinit.plugins.windows.winrmlistener.ConfigWinRMListenerPlugin",
        ]
      }
    }

    post-processor "winbake-verify" {
      accelerator         = "tcg"
      cpus                = 1
      memory              = 1024
      hostname            = "verify-standin"
      metadata_service    = true
      check_password_post = true
      build_passwords     = [var.winrm_password]
      timeout             = "10m"
      winrm_timeout       = "2m"
    }
  }
}
