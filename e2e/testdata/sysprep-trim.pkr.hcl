# winbake-qemu installs the stand-in on a virtio-blk disk (drivers from a
# virtio-win ISO), winbake-updates delivers a package, installs it with a
# restart and removes it, and winbake-sysprep retrims C: before
# generalizing a copy: the clusters the package occupied go back, so the
# generalized qcow2 holds fewer than the golden one.
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

variable "virtio_win_iso" {
  type = string
}

variable "packages_dir" {
  type = string
}

variable "output_dir" {
  type = string
}

variable "sysprep_dir" {
  type = string
}

variable "winrm_password" {
  type      = string
  sensitive = true
}

source "winbake-qemu" "standin" {
  iso_url                 = var.iso
  iso_checksum            = "none"
  virtio_win_iso_url      = var.virtio_win_iso
  virtio_win_iso_checksum = "none"
  image_name              = "Windows Server 2022 SERVERSTANDARDCORE"
  firmware                = "bios"
  accelerator             = "tcg"
  cpus                    = 1
  memory                  = 1024
  disk_interface          = "virtio-blk"
  net_device              = "e1000"
  output_directory        = var.output_dir
  vm_name                 = "standin"
  winrm_password          = var.winrm_password
  winrm_timeout           = "10m"
  shutdown_timeout        = "2m"
}

build {
  sources = ["source.winbake-qemu.standin"]

  provisioner "winbake-updates" {
    packages        = ["${var.packages_dir}/*.cab"]
    max_reboots     = 2
    restart_timeout = "10m"
  }

  post-processor "winbake-sysprep" {
    winrm_password      = var.winrm_password
    accelerator         = "tcg"
    cpus                = 1
    memory              = 1024
    output_directory    = var.sysprep_dir
    winrm_timeout       = "10m"
    timeout             = "10m"
    keep_input_artifact = true
  }
}
