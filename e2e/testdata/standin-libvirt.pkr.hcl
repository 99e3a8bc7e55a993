# Installs winbake's stand-in Windows (make standin-iso) into a golden qcow2
# disk on a libvirt hypervisor, the way a real Windows Server ISO would be
# installed. The ISO and answer-file CD are uploaded into `pool`, the disk
# is downloaded into output_dir, and the domain and volumes are removed:
#   packer build -var libvirt_uri=qemu+ssh://root@virthost/system \
#     -var forward_address=192.0.2.10 e2e/testdata/standin-libvirt.pkr.hcl
packer {
  required_plugins {
    winbake = {
      source  = "github.com/winbake/winbake"
      version = ">= 0.1.0"
    }
  }
}

variable "iso" {
  type        = string
  description = "The install ISO."
  default     = "build/standin/winbake-standin.iso"
}

variable "libvirt_uri" {
  type    = string
  default = "qemu:///system"
}

variable "pool" {
  type    = string
  default = "default"
}

variable "forward_address" {
  type        = string
  description = "Address of the hypervisor WinRM is forwarded from; empty for a local hypervisor."
  default     = ""
}

variable "firmware" {
  type    = string
  default = "bios"
}

variable "tpm" {
  type    = bool
  default = false
}

variable "secure_boot" {
  type    = bool
  default = false
}

variable "image_name" {
  type    = string
  default = "Windows Server 2022 SERVERSTANDARDCORE"
}

variable "vm_name" {
  type    = string
  default = "standin"
}

# "user" (QEMU user networking with WinRM forwarded on the hypervisor) or
# "bridge" (the guest joins the hypervisor's bridge named by bridge and
# gets its address by DHCP; winbake finds it in the ARP table).
variable "network" {
  type    = string
  default = "user"
}

variable "bridge" {
  type    = string
  default = ""
}

# A libvirt network to join instead of network (set network = ""); the
# guest's address comes from address_source: "lease" (the network's DHCP
# leases, the default), "arp" or "agent".
variable "libvirt_network" {
  type    = string
  default = ""
}

variable "address_source" {
  type    = string
  default = ""
}

# A virtio-win ISO (its drivers, and the guest agent's MSI in guest-agent\)
# attached as a further CD; empty for none.
variable "virtio_win_iso" {
  type    = string
  default = ""
}

# Commands run at the first logon, before WinRM is enabled (for example
# installing the QEMU guest agent from the virtio-win CD, which
# address_source = "agent" needs).
variable "unattend_extra_commands" {
  type    = list(string)
  default = []
}

# Leave the finished disk in pool instead of downloading it.
variable "keep_in_pool" {
  type    = bool
  default = false
}

variable "output_dir" {
  type    = string
  default = "output/standin-libvirt"
}

source "winbake-libvirt" "standin" {
  libvirt_uri             = var.libvirt_uri
  pool                    = var.pool
  forward_address         = var.forward_address
  network                 = var.network
  bridge                  = var.bridge
  libvirt_network         = var.libvirt_network
  address_source          = var.address_source
  keep_in_pool            = var.keep_in_pool
  iso_url                 = var.iso
  iso_checksum            = "none"
  virtio_win_iso_url      = var.virtio_win_iso
  virtio_win_iso_checksum = var.virtio_win_iso == "" ? "" : "none"
  unattend_extra_commands = var.unattend_extra_commands
  image_name              = var.image_name
  firmware                = var.firmware
  tpm                     = var.tpm
  secure_boot             = var.secure_boot
  accelerator             = "tcg"
  cpus                    = 1
  memory                  = 1024
  disk_interface          = "sata"
  net_device              = "e1000"
  vm_name                 = var.vm_name
  output_directory        = var.output_dir
  winrm_timeout           = "5m"
  shutdown_timeout        = "2m"
}

build {
  sources = ["source.winbake-libvirt.standin"]
}
