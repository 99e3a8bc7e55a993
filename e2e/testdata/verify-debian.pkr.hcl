# A Linux image through winbake's post-processors: Packer's file builder
# hands a Debian cloud image (built by scripts/debian-cloud-image.sh with the
# real cloud-init) to winbake-compress, and winbake-verify boots the qcow2 it
# wrote with a config drive and checks what cloud-init did over SSH.
variable "input_disk" {
  type = string
}

variable "output_dir" {
  type = string
}

source "file" "debian" {
  source = var.input_disk
  target = "${var.output_dir}/debian-12.qcow2"
}

build {
  sources = ["source.file.debian"]

  post-processors {
    post-processor "winbake-compress" {
      formats = ["qcow2"]
      output  = "${var.output_dir}/debian-12-compressed.{{.Ext}}"
    }
    post-processor "winbake-verify" {
      hostname = "debian-verify"
      memory   = 1024
      cpus     = 1
      check {
        name     = "openssh-server is running"
        command  = "systemctl is-active ssh"
        contains = "active"
      }
    }
  }
}
