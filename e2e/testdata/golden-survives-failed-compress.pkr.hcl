# The stand-in installed into a golden image, then compressed into a
# directory too small for the result: winbake-compress fails with the disk
# full, Packer destroys the builder's artifact (a failed first
# post-processor does so whatever keep_input_artifact says), and the
# golden image must survive.
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

variable "images_dir" {
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
  winrm_timeout    = "5m"
  shutdown_timeout = "2m"
}

build {
  sources = ["source.winbake-qemu.standin"]

  post-processor "winbake-compress" {
    formats             = ["dd.gz"]
    output              = "${var.images_dir}/standin.{{.Ext}}"
    keep_input_artifact = true
  }
}
