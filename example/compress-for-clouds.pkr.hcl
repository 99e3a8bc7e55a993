# Turns an existing Windows disk image (for example the golden image of an
# earlier winbake build) into the formats OpenStack and MAAS take:
#   packer build -var disk_image=output/windows-server-2022/disk.qcow2 example/compress-for-clouds.pkr.hcl
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
  description = "The disk image to convert (qcow2, raw, vhdx or vmdk)."
  default     = "output/windows-server-2022/disk.qcow2"
}

variable "output_dir" {
  type    = string
  default = "output/clouds"
}

source "file" "golden" {
  source = var.disk_image
  target = "${var.output_dir}/golden.img"
}

build {
  sources = ["source.file.golden"]

  # For Glance: zstd-compressed qcow2 (readers need QEMU 5.1 or later; use
  # "zlib" for older compute nodes).
  post-processor "winbake-compress" {
    format              = "qcow2"
    qcow2_compression   = "zstd"
    output              = "${var.output_dir}/windows.qcow2"
    keep_input_artifact = true
  }

  # For MAAS: a gzip-compressed raw disk, uploaded with filetype ddgz. Only
  # the data the disk holds is read and compressed, not its virtual size.
  post-processor "winbake-compress" {
    format = "dd.gz"
    output = "${var.output_dir}/windows.dd.gz"
  }
}
