# winbake-updates after winbake-qemu refreshing a golden stand-in disk
# (source_image): the packages in
# var.packages_dir are served from the host over HTTP, installed with
# reboots, and the manifest the provisioner leaves in the image is copied
# out to var.manifest_out. The build manifest lists the packages from that
# record and the ISO checksum verified.
packer {
  required_plugins {
    winbake = {
      source  = "github.com/winbake/winbake"
      version = ">= 0.1.0"
    }
  }
}

# A copy of the BIOS golden stand-in's disk (e2e/golden_test.go), whose
# build account the build logs on with.
variable "golden_disk" {
  type = string
}

variable "winrm_password" {
  type      = string
  sensitive = true
}

variable "output_dir" {
  type = string
}

variable "packages_dir" {
  type = string
}

variable "manifest_out" {
  type = string
}

source "winbake-qemu" "standin" {
  source_image          = var.golden_disk
  source_image_checksum = "none"
  accelerator           = "tcg"
  cpus                  = 1
  memory                = 1024
  disk_interface        = "sata"
  net_device            = "e1000"
  output_directory      = var.output_dir
  vm_name               = "standin"
  winrm_password        = var.winrm_password
  winrm_timeout         = "10m"
  shutdown_timeout      = "2m"
}

build {
  sources = ["source.winbake-qemu.standin"]

  provisioner "winbake-updates" {
    packages        = ["${var.packages_dir}/*.msu", "${var.packages_dir}/*.cab"]
    max_reboots     = 4
    restart_timeout = "10m"
  }

  provisioner "file" {
    direction   = "download"
    source      = "C:\\ProgramData\\winbake\\updates.json"
    destination = var.manifest_out
  }
}
