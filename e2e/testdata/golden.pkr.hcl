# A golden stand-in image, as the shared fixture of the e2e tests that only
# start from one (e2e/golden_test.go builds each variant once).
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

variable "firmware" {
  type = string
}

variable "secure_boot" {
  type = bool
}

variable "tpm" {
  type = bool
}

variable "winrm_password" {
  type      = string
  sensitive = true
}

source "winbake-qemu" "standin" {
  iso_url          = var.iso
  iso_checksum     = var.iso_checksum
  image_name       = "Windows Server 2022 SERVERSTANDARDCORE"
  firmware         = var.firmware
  secure_boot      = var.secure_boot
  tpm              = var.tpm
  accelerator      = "tcg"
  cpus             = 1
  memory           = 1024
  disk_interface   = "sata"
  net_device       = "e1000"
  output_directory = var.output_dir
  vm_name          = "standin"
  winrm_password   = var.winrm_password
  winrm_timeout    = "10m"
  shutdown_timeout = "2m"
}

build {
  sources = ["source.winbake-qemu.standin"]
}
