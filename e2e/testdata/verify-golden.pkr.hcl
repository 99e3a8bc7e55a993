# A copy of a golden stand-in image (e2e/golden_test.go) generalized by
# winbake-sysprep, with or without cloudbase-init, then verified as
# OpenStack boots it (config drive and metadata service at
# 169.254.169.254).
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

# Empty: no cloudbase-init, and verification fails.
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

  post-processors {
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
          msi = cloudbase_init.value
          metadata_services = [
            "cloudbaseinit.metadata.services.httpservice.HttpService",
            "cloudbaseinit.metadata.services.configdrive.ConfigDriveService",
          ]
          plugins = [
            "cloudbaseinit.plugins.common.sethostname.SetHostNamePlugin",
            "cloudbaseinit.plugins.windows.createuser.CreateUserPlugin",
            "cloudbaseinit.plugins.common.sshpublickeys.SetUserSSHPublicKeysPlugin",
            "cloudbaseinit.plugins.common.userdata.UserDataPlugin",
            "cloudbaseinit.plugins.common.setuserpassword.SetUserPasswordPlugin",
            # An HTTPS listener with a certificate of its own at first boot:
            # the instance keeps WinRM over HTTPS (winbake-verify's
            # keep_winrm defaults to true from the manifest).
            "cloudbaseinit.plugins.windows.winrmlistener.ConfigWinRMListenerPlugin",
          ]
        }
      }
    }

    post-processor "winbake-verify" {
      accelerator         = "tcg"
      cpus                = 1
      memory              = 1024
      hostname            = "verify-standin"
      metadata_service    = true
      check_password_post = var.cloudbase_init_msi != ""
      build_passwords     = [var.winrm_password]
      timeout             = "10m"
      winrm_timeout       = var.cloudbase_init_msi == "" ? "1m" : "2m"
    }
  }
}
