# Publishes a generalized Windows image to MAAS as windows/win2022:
#   export MAAS_API_KEY=$(maas apikey --username admin)
#   packer build -var maas_url=http://maas.example.com:5240/MAAS example/maas-publish.pkr.hcl
# (by default the generalized image of example/windows-server-2022.pkr.hcl)
#
# MAAS deploys the image with curtin, which only works when the image has:
#   - a GPT disk that boots with UEFI (winbake-qemu with firmware = "uefi");
#   - cloudbase-init installed, with the MAAS metadata service among its
#     metadata_services (winbake-sysprep's cloudbase_init block, see below);
#     MAAS appends its metadata URL and OAuth token to cloudbase-init.conf at
#     each deployment, so the image carries no MAAS settings;
#   - a curtin\ folder at the root of the Windows partition (C:\curtin) with
#     the hooks curtin runs after writing the disk: curtin-hooks, finalize and
#     finalize.py (from cloudbase/windows-curtin-hooks), for example copied by
#     a file provisioner before sysprep.
#
# The winbake-sysprep post-processor of the build that made disk_image would
# carry, for example:
#
#   cloudbase_init {
#     msi               = "CloudbaseInitSetup_Stable_x64.msi"
#     metadata_services = ["cloudbaseinit.metadata.services.maasservice.MaaSHttpService"]
#   }
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
  description = "The generalized (sysprepped) Windows disk image, qcow2 or raw."
  default     = "output/windows-server-2022-generalized/windows-server-2022.qcow2"
}

variable "output_dir" {
  type    = string
  default = "output/maas"
}

variable "maas_url" {
  type        = string
  description = "The MAAS URL, as for `maas login`."
  default     = "http://maas.example.com:5240/MAAS"
}

variable "maas_api_key" {
  type        = string
  description = "API key of a MAAS administrator (consumer_key:token_key:token_secret); read from MAAS_API_KEY."
  default     = env("MAAS_API_KEY")
  sensitive   = true
}

locals {
  # Lets `packer validate` run without a key; MAAS refuses this placeholder.
  maas_api_key = var.maas_api_key != "" ? var.maas_api_key : "MAAS_API_KEY:is:unset"
}

source "file" "golden" {
  source = var.disk_image
  target = "${var.output_dir}/golden.img"
}

build {
  sources = ["source.file.golden"]

  post-processors {
    # MAAS takes a gzip-compressed raw disk as filetype ddgz; winbake-maas
    # uses the filetype winbake-compress records.
    post-processor "winbake-compress" {
      format = "dd.gz"
      output = "${var.output_dir}/windows.dd.gz"
    }

    # Deployable as OS "windows", release "win2022"; win2022 needs no
    # licence key at deploy time (win2016 and win2019 would).
    post-processor "winbake-maas" {
      url     = var.maas_url
      api_key = local.maas_api_key
      release = "win2022"
      title   = "Windows Server 2022 (winbake)"
      # Rebuilds replace the image; MAAS keeps deploying the previous one
      # until the new upload is complete.
      replace = true
    }
  }
}
