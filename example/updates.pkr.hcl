# Installs Windows Server 2022 and this month's offline updates into it:
# the packages in var.updates_dir are served to the guest over HTTP from the
# build host, installed servicing stack first, and followed through every
# reboot. The manifest is left at C:\ProgramData\winbake\updates.json.
#   packer build -var updates_dir=updates/2026-11 example/updates.pkr.hcl
packer {
  required_plugins {
    winbake = {
      source  = "github.com/winbake/winbake"
      version = ">= 0.1.0"
    }
  }
}

variable "iso_url" {
  type        = string
  description = "Windows Server 2022 evaluation ISO (or a local copy of it)."
  default     = "https://go.microsoft.com/fwlink/p/?LinkID=2195280&clcid=0x409&culture=en-us&country=US"
}

variable "iso_checksum" {
  type    = string
  default = "sha256:3e4fa6d8507b554856fc9ca6079cc402df11a8b79344871669f0251535255325"
}

variable "virtio_win_iso_url" {
  type    = string
  default = "https://fedorapeople.org/groups/virt/virtio-win/direct-downloads/archive-virtio/virtio-win-0.1.271-1/virtio-win-0.1.271.iso"
}

variable "virtio_win_iso_checksum" {
  type    = string
  default = "sha256:bbe6166ad86a490caefad438fef8aa494926cb0a1b37fa1212925cfd81656429"
}

variable "updates_dir" {
  type        = string
  description = "Directory of .msu and .cab packages from the Microsoft Update Catalog."
  default     = "updates/2026-11"
}

source "winbake-qemu" "ws2022" {
  iso_url                 = var.iso_url
  iso_checksum            = var.iso_checksum
  virtio_win_iso_url      = var.virtio_win_iso_url
  virtio_win_iso_checksum = var.virtio_win_iso_checksum
  image_name              = "Windows Server 2022 SERVERSTANDARD"

  firmware         = "uefi"
  tpm              = true
  cpus             = 2
  memory           = 4096
  disk_size        = 65536 # MiB
  disk_interface   = "virtio-blk"
  net_device       = "virtio-net"
  output_directory = "output/windows-server-2022-updated"
  vm_name          = "windows-server-2022"

  communicator  = "winrm"
  winrm_timeout = "2h"
}

build {
  sources = ["source.winbake-qemu.ws2022"]

  provisioner "winbake-updates" {
    packages     = ["${var.updates_dir}/*.msu", "${var.updates_dir}/*.cab"]
    max_reboots  = 10
    retries      = 2
    defer_failed = true
  }
}
