# Builds a golden image, generalizes a copy with cloudbase-init, and boots a
# throwaway copy of the generalized image the way OpenStack will (config
# drive and metadata service) before anything is published:
#   packer build -var iso=... -var winrm_password=... \
#     -var cloudbase_init_msi=CloudbaseInitSetup_Stable_x64.msi example/verify.pkr.hcl
# A failed check stops the post-processor chain, so winbake-glance never
# uploads an image whose first boot is broken.
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
  type    = string
  default = "none"
}

# Windows has no inbox driver for virtio disks and network cards; Setup
# loads them from the virtio-win ISO.
variable "virtio_win_iso_url" {
  type    = string
  default = "https://fedorapeople.org/groups/virt/virtio-win/direct-downloads/archive-virtio/virtio-win-0.1.271-1/virtio-win-0.1.271.iso"
}

variable "virtio_win_iso_checksum" {
  type    = string
  default = "sha256:bbe6166ad86a490caefad438fef8aa494926cb0a1b37fa1212925cfd81656429"
}

variable "cloudbase_init_msi" {
  type = string
}

# The build account's password; verify makes sure it is not left in the
# image (answer files, automatic logon).
variable "winrm_password" {
  type      = string
  sensitive = true
}

source "winbake-qemu" "server2022" {
  iso_url                 = var.iso
  iso_checksum            = var.iso_checksum
  virtio_win_iso_url      = var.virtio_win_iso_url
  virtio_win_iso_checksum = var.virtio_win_iso_checksum
  image_name              = "Windows Server 2022 SERVERSTANDARD"
  firmware                = "uefi"
  tpm                     = true
  output_directory        = "output/server2022-golden"
  vm_name                 = "server2022"
  winrm_password          = var.winrm_password
}

build {
  sources = ["source.winbake-qemu.server2022"]

  post-processors {
    post-processor "winbake-sysprep" {
      winrm_password      = var.winrm_password
      output_directory    = "output/server2022-generalized"
      keep_input_artifact = true
      cloudbase_init {
        msi = var.cloudbase_init_msi
        metadata_services = [
          "cloudbaseinit.metadata.services.httpservice.HttpService",
          "cloudbaseinit.metadata.services.configdrive.ConfigDriveService",
        ]
      }
    }

    # The instance gets a config drive and the OpenStack metadata API at
    # http://169.254.169.254/, where cloudbase-init's HttpService looks by
    # default; it posts the admin password there, encrypted with the
    # instance's key, and verify decrypts it as `nova get-password` does.
    post-processor "winbake-verify" {
      mode                = "openstack"
      config_drive        = true
      metadata_service    = true
      check_password_post = true
      hostname            = "verify-2022"
      username            = "Admin"
      build_passwords     = [var.winrm_password]
      keep_winrm          = true

      check {
        name     = "time zone is UTC"
        command  = "tzutil /g"
        contains = "UTC"
      }
    }

    # Runs only when every check above passed.
    # post-processor "winbake-glance" { ... }
  }
}
