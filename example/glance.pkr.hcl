# Publishes a Windows image to OpenStack Glance: the qcow2 of an earlier
# winbake build (by default what example/windows-server-2022.pkr.hcl wrote,
# with the properties of its generalized image's manifest) goes to the cloud
# "prod" of clouds.yaml with the properties Nova needs, and only the two
# newest images of the family stay visible.
#   packer build -var cloud=prod example/glance.pkr.hcl
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
  description = "The disk image to publish."
  default     = "output/clouds/windows-server-2022.qcow2"
}

variable "manifest" {
  type        = string
  description = "The winbake manifest of the image, which supplies the properties."
  default     = "output/windows-server-2022-generalized/windows-server-2022.json"
}

variable "cloud" {
  type        = string
  description = "Cloud name in clouds.yaml."
  default     = "prod"
}

source "file" "golden" {
  source = var.disk_image
  target = "output/glance/windows-server-2022.qcow2"
}

build {
  sources = ["source.file.golden"]

  post-processor "winbake-glance" {
    cloud        = var.cloud
    image_name   = "Windows Server 2022 - x64 [{{ isotime \"2006-01-02\" }}]"
    visibility   = "private"
    tags         = ["windows", "ws2022"]
    min_ram      = 4096
    manifest     = var.manifest
    family       = "ws2022"
    keep_visible = 2
    properties = {
      hw_qemu_guest_agent = "yes"
    }
  }
}
