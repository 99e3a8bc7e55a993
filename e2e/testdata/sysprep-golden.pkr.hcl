# winbake-sysprep on a copy of a golden stand-in image (e2e/golden_test.go):
# the file builder hands on the golden image's manifest, beside which its
# disk, UEFI variables and TPM state lie.
packer {
  required_plugins {
    winbake = {
      source  = "github.com/winbake/winbake"
      version = ">= 0.1.0"
    }
  }
}

variable "golden_dir" {
  type = string
}

variable "sysprep_dir" {
  type = string
}

variable "cloudbase_init_msi" {
  type    = string
  default = ""
}

variable "winrm_password" {
  type      = string
  sensitive = true
}

source "file" "golden" {
  content = file("${var.golden_dir}/standin.json")
  target  = "${var.golden_dir}/standin.json"
}

build {
  sources = ["source.file.golden"]

  post-processor "winbake-sysprep" {
    winrm_password      = var.winrm_password
    accelerator         = "tcg"
    cpus                = 1
    memory              = 1024
    output_directory    = var.sysprep_dir
    winrm_timeout       = "5m"
    timeout             = "10m"
    keep_input_artifact = true

    dynamic "cloudbase_init" {
      for_each = var.cloudbase_init_msi == "" ? [] : [var.cloudbase_init_msi]
      content {
        msi               = cloudbase_init.value
        metadata_services = ["cloudbaseinit.metadata.services.configdrive.ConfigDriveService"]
      }
    }
  }
}
