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

variable "copy_dir" {
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
