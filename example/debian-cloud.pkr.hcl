# A Linux image through the same pipeline as the Windows ones: a Debian
# cloud image you built (with the hashicorp qemu builder, debootstrap or
# mmdebstrap as scripts/debian-cloud-image.sh does, or downloaded from
# Debian) is compressed, booted once with a config drive so the real
# cloud-init proves it sets the hostname, installs the SSH key of the
# default user, runs the user data and grows the root file system, and is
# then published to Glance with the properties read from its own
# /etc/os-release. The two newest images of the family stay visible; older
# ones are deleted once no instance uses them, and hidden while one does.
#   packer build -var disk_image=debian-12-cloud.qcow2 -var cloud=prod example/debian-cloud.pkr.hcl
# layout = "uec" publishes the kernel, initramfs and root file system as
# aki/ari/ami instead of one whole-disk image.
packer {
  required_plugins {
    winbake = {
      source  = "github.com/winbake/winbake"
      version = ">= 0.1.0"
    }
  }
}

variable "disk_image" {
  type        = string
  description = "The Debian cloud image (qcow2 or raw) to publish."
  default     = "output/debian/debian-12-cloud.qcow2"
}

variable "cloud" {
  type        = string
  description = "Cloud name in clouds.yaml."
  default     = "prod"
}

variable "layout" {
  type        = string
  description = "disk (one whole-disk image) or uec (kernel, ramdisk, root file system)."
  default     = "disk"
}

source "file" "debian" {
  source = var.disk_image
  target = "output/debian-publish/debian-12.qcow2"
}

build {
  sources = ["source.file.debian"]

  post-processors {
    post-processor "winbake-compress" {
      formats = ["qcow2"]
      output  = "output/debian-publish/debian-12-cloud.{{.Ext}}"
    }
    post-processor "winbake-verify" {
      hostname = "debian-verify"
      memory   = 1024
      check {
        name     = "openssh-server is running"
        command  = "systemctl is-active ssh"
        contains = "active"
      }
    }
    post-processor "winbake-glance" {
      cloud        = var.cloud
      image_name   = "Debian 12"
      layout       = var.layout
      family       = "debian-12"
      keep_visible = 2
      retire       = "delete-unused"
      # SCS-0102 image metadata: what names used to carry.
      properties = {
        image_build_date  = formatdate("YYYY-MM-DD hh:mm:ss", timestamp())
        image_source      = "private"
        image_description = "https://www.debian.org/releases/bookworm/"
        replace_frequency = "monthly"
        uuid_validity     = "last-3"
        provided_until    = "none"
        hw_disk_bus       = "virtio"
      }
    }
  }
}
