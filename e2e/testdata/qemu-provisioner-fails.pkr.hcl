# The stand-in installed with winbake-qemu (BIOS, TCG), then a provisioner
# fails while WinRM is connected: the build's error names the last Setup
# phase and what C:\Windows\Panther\setuperr.log holds, read over WinRM.
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

  provisioner "shell-local" {
    inline = ["echo provisioner failing on purpose", "exit 3"]
  }
}
