# winbake-updates with defer_failed on the stand-in VM: a package that keeps
# failing is retried after a reboot, then stays in the image for a retry at
# first boot; the manifest, SetupComplete.cmd and the retry list are copied
# out to var.copy_dir.
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

variable "packages_dir" {
  type = string
}

variable "copy_dir" {
  type = string
}

source "winbake-qemu" "standin" {
  iso_url          = var.iso
  iso_checksum     = "none"
  image_name       = "Windows Server 2022 SERVERSTANDARDCORE"
  firmware         = "bios"
  accelerator      = "tcg"
  cpus             = 1
  memory           = 1024
  disk_interface   = "sata"
  net_device       = "e1000"
  output_directory = var.output_dir
  vm_name          = "standin"
  winrm_timeout    = "10m"
  shutdown_timeout = "2m"
}

build {
  sources = ["source.winbake-qemu.standin"]

  provisioner "winbake-updates" {
    packages        = ["${var.packages_dir}/*.cab"]
    retries         = 1
    defer_failed    = true
    restart_timeout = "10m"
  }

  provisioner "file" {
    direction   = "download"
    source      = "C:\\ProgramData\\winbake\\updates.json"
    destination = "${var.copy_dir}/updates.json"
  }

  provisioner "file" {
    direction   = "download"
    source      = "C:\\Windows\\Setup\\Scripts\\SetupComplete.cmd"
    destination = "${var.copy_dir}/SetupComplete.cmd"
  }

  provisioner "file" {
    direction   = "download"
    source      = "C:\\ProgramData\\winbake\\pending-updates.txt"
    destination = "${var.copy_dir}/pending-updates.txt"
  }
}
