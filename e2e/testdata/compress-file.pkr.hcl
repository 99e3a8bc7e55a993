# The smallest build that needs the winbake plugin: Packer's own file builder
# hands a raw disk to winbake-compress, and the manifest records the result.
variable "input_disk" {
  type = string
}

variable "output_dir" {
  type = string
}

source "file" "disk" {
  source = var.input_disk
  target = "${var.output_dir}/disk.raw"
}

build {
  sources = ["source.file.disk"]

  post-processors {
    post-processor "winbake-compress" {
      format = "qcow2"
      output = "${var.output_dir}/disk.qcow2"
    }
    post-processor "manifest" {
      output = "${var.output_dir}/manifest.json"
    }
  }
}
