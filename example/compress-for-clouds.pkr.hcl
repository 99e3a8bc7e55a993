# Turns an existing Windows disk image (by default the generalized image of
# example/windows-server-2022.pkr.hcl) into the formats OpenStack and MAAS
# take, in one pass:
#   packer build example/compress-for-clouds.pkr.hcl
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
  default     = "output/windows-server-2022-generalized/windows-server-2022.qcow2"
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
  # qcow2_compression = "zlib" for older compute nodes). For MAAS: a
  # gzip-compressed raw disk, uploaded with filetype ddgz. Only the data the
  # disk holds is read and compressed, not its virtual size.
  post-processor "winbake-compress" {
    formats             = ["qcow2", "dd.gz"]
    output              = "${var.output_dir}/windows.{{.Ext}}"
    keep_input_artifact = true
  }
}
