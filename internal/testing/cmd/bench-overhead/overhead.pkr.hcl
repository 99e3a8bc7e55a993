# The build bench-overhead times: winbake's whole job on the stand-in
# Windows but the publication (demo/standin.pkr.hcl without winbake-glance,
# which needs a Keystone and a glance-api): install, offline updates with
# their reboot, sysprep with cloudbase-init, qcow2 + dd.gz, a first boot
# as a cloud boots it.
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

variable "iso_checksum" {
  type = string
}

variable "output_dir" {
  type = string
}

variable "updates_dir" {
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
  iso_checksum     = var.iso_checksum
  image_name       = "Windows Server 2022 SERVERSTANDARDCORE"
  firmware         = "uefi"
  secure_boot      = true
  tpm              = true
  accelerator      = "tcg"
  cpus             = 1
  memory           = 1024
  disk_interface   = "sata"
  net_device       = "e1000"
  output_directory = "${var.output_dir}/golden"
  vm_name          = "standin"
  winrm_password   = var.winrm_password
  winrm_timeout    = "10m"
  shutdown_timeout = "2m"
}

build {
  sources = ["source.winbake-qemu.standin"]

  provisioner "winbake-updates" {
    packages        = ["${var.updates_dir}/*.msu", "${var.updates_dir}/*.cab"]
    max_reboots     = 4
    restart_timeout = "10m"
  }

  post-processors {
    post-processor "winbake-sysprep" {
      winrm_password   = var.winrm_password
      accelerator      = "tcg"
      cpus             = 1
      memory           = 1024
      output_directory = "${var.output_dir}/generalized"
      winrm_timeout    = "10m"
      timeout          = "10m"
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
        ]
      }
    }
    post-processor "winbake-compress" {
      formats = ["qcow2", "dd.gz"]
      output  = "${var.output_dir}/clouds/standin.{{.Ext}}"
    }
    post-processor "winbake-verify" {
      accelerator         = "tcg"
      cpus                = 1
      memory              = 1024
      hostname            = "winbake-bench"
      metadata_service    = true
      check_password_post = true
      build_passwords     = [var.winrm_password]
      timeout             = "10m"
      winrm_timeout       = "5m"
    }
  }
}
