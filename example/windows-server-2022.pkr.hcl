# Windows Server 2022 Standard (Desktop Experience) for OpenStack and MAAS,
# the whole job in one build:
#   install from Microsoft's evaluation ISO (UEFI, Secure Boot, TPM, virtio)
#   -> offline updates from a folder of .msu/.cab files
#   -> a generalized copy with cloudbase-init (the golden image is kept)
#   -> qcow2 (Glance) and dd.gz (MAAS) from one compression pass
#   -> a first boot as OpenStack boots an instance, checked
#   -> the qcow2 published to Glance
#
#   packer init example/windows-server-2022.pkr.hcl
#   packer build -var-file=ws2022.pkrvars.hcl example/windows-server-2022.pkr.hcl
#
# with, in ws2022.pkrvars.hcl (see the README for where each comes from):
#   winrm_password              = "..."   # or PKR_VAR_winrm_password in the environment
#   cloudbase_init_msi          = "https://cloudbase.it/downloads/CloudbaseInitSetup_Stable_x64.msi"
#   cloudbase_init_msi_checksum = "sha256:..."
#   updates_dir                 = "updates/ws2022"   # .msu/.cab from the Microsoft Update Catalog
#   cloud                       = "prod"             # a cloud of your clouds.yaml
#
# Optional stages: leave updates_dir or cloud empty to skip the updates or
# the publication, and set verify = false to skip the test boot.
#
# Outputs:
#   output/windows-server-2022/               the golden image (kept; rebuilds start from it)
#   output/windows-server-2022-generalized/   the sysprepped copy, its manifest, the verify report
#   output/clouds/windows-server-2022.qcow2   for Glance (example/glance.pkr.hcl publishes it later too)
#   output/clouds/windows-server-2022.dd.gz   for MAAS (example/maas-publish.pkr.hcl)
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

variable "winrm_password" {
  type        = string
  description = "Password of the build account; winbake-verify makes sure the image does not keep it."
  sensitive   = true
}

variable "updates_dir" {
  type        = string
  description = "Folder of .msu/.cab update packages from the Microsoft Update Catalog; empty: no updates."
  default     = ""
}

variable "cloudbase_init_msi" {
  type        = string
  description = "The cloudbase-init MSI: a local path or an https:// URL (then set cloudbase_init_msi_checksum)."
}

variable "cloudbase_init_msi_checksum" {
  type        = string
  description = "sha256:<64 hex digits> of the MSI; required for a URL."
  default     = ""
}

variable "verify" {
  type        = bool
  description = "Boot the generalized image once as OpenStack would and check cloudbase-init's work before publishing."
  default     = true
}

variable "cloud" {
  type        = string
  description = "Cloud name in clouds.yaml to publish the qcow2 to; empty: no publication."
  default     = ""
}

source "winbake-qemu" "ws2022" {
  iso_url                 = var.iso_url
  iso_checksum            = var.iso_checksum
  virtio_win_iso_url      = var.virtio_win_iso_url
  virtio_win_iso_checksum = var.virtio_win_iso_checksum
  image_name              = "Windows Server 2022 SERVERSTANDARD"

  firmware         = "uefi"
  secure_boot      = true
  tpm              = true
  cpus             = 2
  memory           = 4096
  disk_size        = 65536 # MiB
  disk_interface   = "virtio-blk"
  net_device       = "virtio-net"
  output_directory = "output/windows-server-2022"
  vm_name          = "windows-server-2022"

  winrm_password = var.winrm_password
  winrm_timeout  = "2h"
}

build {
  sources = ["source.winbake-qemu.ws2022"]

  # Servicing stack first, then the cumulative update, each DISM run with
  # the reboots it asks for.
  dynamic "provisioner" {
    for_each = var.updates_dir == "" ? [] : [var.updates_dir]
    labels   = ["winbake-updates"]
    content {
      packages = ["${provisioner.value}/*.msu", "${provisioner.value}/*.cab"]
    }
  }

  post-processors {
    post-processor "winbake-sysprep" {
      winrm_password   = var.winrm_password
      output_directory = "output/windows-server-2022-generalized"
      cloudbase_init {
        msi          = var.cloudbase_init_msi
        msi_checksum = var.cloudbase_init_msi_checksum
        metadata_services = [
          "cloudbaseinit.metadata.services.configdrive.ConfigDriveService",
          "cloudbaseinit.metadata.services.httpservice.HttpService",
        ]
      }
    }

    post-processor "winbake-compress" {
      formats = ["qcow2", "dd.gz"]
      output  = "output/clouds/windows-server-2022.{{.Ext}}"
    }

    # Boots the qcow2 just written with a config drive and the metadata
    # service, as Nova would; a failed check stops the chain, so nothing
    # broken is published.
    dynamic "post-processor" {
      for_each = var.verify ? ["openstack"] : []
      labels   = ["winbake-verify"]
      content {
        mode                = post-processor.value
        config_drive        = true
        metadata_service    = true
        check_password_post = true
        build_passwords     = [var.winrm_password]
      }
    }

    dynamic "post-processor" {
      for_each = var.cloud == "" ? [] : [var.cloud]
      labels   = ["winbake-glance"]
      content {
        cloud        = post-processor.value
        image_name   = "Windows Server 2022 Standard [{{ isotime \"2006-01-02\" }}]"
        visibility   = "private"
        family       = "ws2022-standard"
        keep_visible = 2
      }
    }
  }
}
