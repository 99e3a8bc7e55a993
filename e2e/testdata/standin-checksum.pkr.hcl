# The stand-in install with an explicit iso_checksum, for the checksum tests.
variable "iso" {
  type = string
}

variable "iso_checksum" {
  type = string
}

variable "output_dir" {
  type = string
}

source "winbake-qemu" "standin" {
  iso_url          = var.iso
  iso_checksum     = var.iso_checksum
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
}
