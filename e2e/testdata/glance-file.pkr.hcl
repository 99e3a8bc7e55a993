# A raw disk compressed to qcow2 by winbake-compress, then published to Glance
# by winbake-glance with the credentials of the OS_* environment.
variable "input_disk" {
  type = string
}

variable "output_dir" {
  type = string
}

variable "image_name" {
  type = string
}

source "file" "disk" {
  source = var.input_disk
  target = "${var.output_dir}/ws2022.raw"
}

build {
  sources = ["source.file.disk"]

  post-processors {
    post-processor "winbake-compress" {
      format = "qcow2"
      output = "${var.output_dir}/ws2022-compressed.qcow2"
    }
    post-processor "winbake-glance" {
      image_name = var.image_name
      visibility = "private"
      tags       = ["e2e"]
      properties = {
        built_by = "packer"
      }
    }
  }
}
