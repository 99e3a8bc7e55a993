# A golden stand-in (a copy of the shared BIOS one, e2e/golden_test.go,
# refreshed from its disk with source_image) given two defects operators
# really ship: the build's
# answer file left in C:\Windows\System32\Sysprep holding the build password
# (uploaded by Packer's file provisioner over WinRM), and an update that
# failed during the build and was deferred (winbake-updates with
# defer_failed). Two generalized copies are verified as OpenStack boots
# them: with cloudbase-init reading the config drive first, then the
# metadata service (only "no build password left" and "updates installed"
# fail; the metadata comes from the config drive, which the stand-in reads
# as Windows' CD-ROM file system does), and
# with cloudbase-init reading the metadata API only while the instance gets
# a config drive only (cloudbase-init finds no metadata). Packer runs the
# second post-processor chain although the first failed.
packer {
  required_plugins {
    winbake = {
      source  = "github.com/winbake/winbake"
      version = ">= 0.1.0"
    }
  }
}

variable "golden_disk" {
  type = string
}

variable "output_dir" {
  type = string
}

variable "packages_dir" {
  type = string
}

variable "metadata_dir" {
  type = string
}

variable "no_config_drive_dir" {
  type = string
}

variable "cloudbase_init_msi" {
  type = string
}

variable "winrm_password" {
  type      = string
  sensitive = true
}

source "winbake-qemu" "standin" {
  source_image          = var.golden_disk
  source_image_checksum = "none"
  accelerator           = "tcg"
  cpus                  = 1
  memory                = 1024
  disk_interface        = "sata"
  net_device            = "e1000"
  output_directory      = var.output_dir
  vm_name               = "standin"
  winrm_password        = var.winrm_password
  winrm_timeout         = "10m"
  shutdown_timeout      = "2m"
}

build {
  sources = ["source.winbake-qemu.standin"]

  # The answer file an operator copied in for a later sysprep and forgot.
  provisioner "file" {
    content     = <<-EOT
      <?xml version="1.0" encoding="utf-8"?>
      <unattend xmlns="urn:schemas-microsoft-com:unattend">
        <settings pass="oobeSystem">
          <component name="Microsoft-Windows-Shell-Setup" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS">
            <AutoLogon>
              <Enabled>true</Enabled>
              <Username>Administrator</Username>
              <Password>
                <Value>${var.winrm_password}</Value>
                <PlainText>true</PlainText>
              </Password>
            </AutoLogon>
          </component>
        </settings>
      </unattend>
    EOT
    destination = "C:\\Windows\\System32\\Sysprep\\unattend.xml"
  }

  # One package installs, the other keeps failing: it is deferred to the
  # first boot and listed as such in C:\ProgramData\winbake\updates.json.
  provisioner "winbake-updates" {
    packages        = ["${var.packages_dir}/*.cab"]
    retries         = 0
    defer_failed    = true
    restart_timeout = "10m"
  }

  post-processors {
    post-processor "winbake-sysprep" {
      winrm_password      = var.winrm_password
      accelerator         = "tcg"
      cpus                = 1
      memory              = 1024
      output_directory    = var.metadata_dir
      winrm_timeout       = "5m"
      timeout             = "10m"
      keep_input_artifact = true

      cloudbase_init {
        msi = var.cloudbase_init_msi
        metadata_services = [
          "cloudbaseinit.metadata.services.configdrive.ConfigDriveService",
          "cloudbaseinit.metadata.services.httpservice.HttpService",
        ]
        plugins = [
          "cloudbaseinit.plugins.common.sethostname.SetHostNamePlugin",
          "cloudbaseinit.plugins.windows.createuser.CreateUserPlugin",
          "cloudbaseinit.plugins.common.sshpublickeys.SetUserSSHPublicKeysPlugin",
          "cloudbaseinit.plugins.common.userdata.UserDataPlugin",
          "cloudbaseinit.plugins.common.setuserpassword.SetUserPasswordPlugin",
        ]
      }
    }

    post-processor "winbake-verify" {
      accelerator      = "tcg"
      cpus             = 1
      memory           = 1024
      hostname         = "verify-standin"
      metadata_service = true
      build_passwords  = [var.winrm_password]
      timeout          = "10m"
      winrm_timeout    = "2m"
    }
  }

  # No config drive support: cloudbase-init reads the metadata API only,
  # the instance gets a config drive only. The API's address is one where
  # nothing answers (the build host's port 1 through QEMU's user network),
  # so that a metadata service of the machine running the test (a cloud
  # VM's 169.254.169.254) cannot stand in for the missing one.
  post-processors {
    post-processor "winbake-sysprep" {
      winrm_password      = var.winrm_password
      accelerator         = "tcg"
      cpus                = 1
      memory              = 1024
      output_directory    = var.no_config_drive_dir
      winrm_timeout       = "5m"
      timeout             = "10m"
      keep_input_artifact = true

      cloudbase_init {
        msi = var.cloudbase_init_msi
        metadata_services = [
          "cloudbaseinit.metadata.services.httpservice.HttpService",
        ]
        plugins = [
          "cloudbaseinit.plugins.common.sethostname.SetHostNamePlugin",
          "cloudbaseinit.plugins.windows.createuser.CreateUserPlugin",
          "cloudbaseinit.plugins.common.sshpublickeys.SetUserSSHPublicKeysPlugin",
          "cloudbaseinit.plugins.common.userdata.UserDataPlugin",
          "cloudbaseinit.plugins.common.setuserpassword.SetUserPasswordPlugin",
        ]
        options = {
          metadata_base_url = "http://10.0.2.2:1/"
        }
      }
    }

    post-processor "winbake-verify" {
      accelerator      = "tcg"
      cpus             = 1
      memory           = 1024
      hostname         = "verify-standin"
      config_drive     = true
      metadata_service = false
      build_passwords  = [var.winrm_password]
      timeout          = "5m"
      winrm_timeout    = "1m"
    }
  }
}
