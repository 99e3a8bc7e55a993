# Installs winbake's stand-in Windows (make standin-iso) into a golden qcow2
# disk under QEMU, the way a real Windows Server ISO would be installed:
#   packer build -var firmware=bios e2e/testdata/standin.pkr.hcl
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

variable "disk_interface" {
  type    = string
  default = "sata"
}

variable "winrm_timeout" {
  type    = string
  default = "5m"
}

variable "winrm_password" {
  type        = string
  description = "Password of the build account; generated when empty."
  default     = ""
  sensitive   = true
}

# "user" (QEMU user networking, WinRM through a port forward on 127.0.0.1)
# or "bridge" (the guest joins the host bridge named by bridge, which
# /etc/qemu/bridge.conf must allow, and gets its address by DHCP).
variable "network" {
  type    = string
  default = "user"
}

variable "bridge" {
  type    = string
  default = ""
}

variable "output_dir" {
  type    = string
  default = "output/standin"
}

source "winbake-qemu" "standin" {
  iso_url          = var.iso
  iso_checksum     = "none"
  image_name       = var.image_name
  firmware         = var.firmware
  tpm              = var.tpm
  secure_boot      = var.secure_boot
  accelerator      = "tcg"
  cpus             = 1
  memory           = 1024
  disk_interface   = var.disk_interface
  net_device       = "e1000"
  network          = var.network
  bridge           = var.bridge
  output_directory = var.output_dir
  vm_name          = "standin"
  winrm_timeout    = var.winrm_timeout
  winrm_password   = var.winrm_password
  shutdown_timeout = "2m"
}

build {
  sources = ["source.winbake-qemu.standin"]

  # The host address the guest reaches (for servers a provisioner starts on
  # the host: listen on WinbakeHostBindIP, tell the guest WinbakeHostIP).
  provisioner "shell-local" {
    inline = ["echo WinbakeHostIP=${build.WinbakeHostIP} WinbakeHostBindIP=${build.WinbakeHostBindIP}"]
  }
}
