# Refreshes a golden disk made by e2e/testdata/standin.pkr.hcl: the build starts
# from that disk (source_image) instead of the install ISO, so there is no
# Windows Setup; the disk boots, WinRM connects with the build account's
# password, and the result is a new standalone qcow2. The source is not
# changed.
#   packer build -var winrm_password=... e2e/testdata/standin.pkr.hcl
#   packer build -var winrm_password=... e2e/testdata/standin-refresh.pkr.hcl
packer {
  required_plugins {
    winbake = {
      source  = "github.com/winbake/winbake"
      version = ">= 0.1.0"
    }
  }
}

variable "source_image" {
  type    = string
  default = "output/standin/standin.qcow2"
}

variable "source_image_checksum" {
  type    = string
  default = "none"
}

variable "winrm_password" {
  type        = string
  description = "Password of the build account in the source image."
  sensitive   = true
}

variable "output_dir" {
  type    = string
  default = "output/standin-refresh"
}

source "winbake-qemu" "standin-refresh" {
  source_image          = var.source_image
  source_image_checksum = var.source_image_checksum
  accelerator           = "tcg"
  cpus                  = 1
  memory                = 1024
  disk_interface        = "sata"
  net_device            = "e1000"
  output_directory      = var.output_dir
  vm_name               = "standin-refresh"
  winrm_password        = var.winrm_password
  winrm_timeout         = "5m"
  shutdown_timeout      = "2m"
}

build {
  sources = ["source.winbake-qemu.standin-refresh"]
}
