# The whole job on winbake's stand-in Windows (make demo runs it): install
# from the ISO with UEFI, Secure Boot and a TPM, offline updates with the
# reboots they need, a generalized copy with cloudbase-init, qcow2 and
# dd.gz from one compression pass, a first boot as a cloud would boot it,
# and the qcow2 published to Glance.
#
# scripts/demo.sh makes the inputs (update packages, the stand-in
# cloudbase-init MSI, a build password) and the loopback Keystone and
# glance-api the image is published to, then runs
#   packer build -var-file=build/demo/demo.pkrvars.hcl demo/standin.pkr.hcl
# with the cloud's OS_* variables in the environment.
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

variable "iso_checksum" {
  type    = string
  default = "none"
}

variable "output_dir" {
  type    = string
  default = "build/demo"
}

# A folder of .msu/.cab update packages.
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

variable "image_name" {
  type    = string
  default = "winbake demo"
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
      hostname            = "winbake-demo"
      metadata_service    = true
      check_password_post = true
      build_passwords     = [var.winrm_password]
      timeout             = "10m"
      winrm_timeout       = "5m"
    }

    post-processor "winbake-glance" {
      image_name = var.image_name
      visibility = "private"
      tags       = ["winbake-demo"]
    }

    post-processor "manifest" {
      output = "${var.output_dir}/packer-manifest.json"
    }
  }
}
