# For full specification on the configuration of this file visit:
# https://github.com/hashicorp/integration-template#metadata-configuration
integration {
  name        = "winbake"
  description = "Bakes Windows cloud images for OpenStack and MAAS: unattended install, offline updates, sysprep, compression, upload."
  identifier  = "packer/winbake/winbake"
  component {
    type = "builder"
    name = "winbake-qemu"
    slug = "qemu"
  }
  component {
    type = "builder"
    name = "winbake-libvirt"
    slug = "libvirt"
  }
  component {
    type = "provisioner"
    name = "winbake-updates"
    slug = "updates"
  }
  component {
    type = "post-processor"
    name = "winbake-sysprep"
    slug = "sysprep"
  }
  component {
    type = "post-processor"
    name = "winbake-compress"
    slug = "compress"
  }
  component {
    type = "post-processor"
    name = "winbake-glance"
    slug = "glance"
  }
  component {
    type = "post-processor"
    name = "winbake-maas"
    slug = "maas"
  }
  component {
    type = "post-processor"
    name = "winbake-verify"
    slug = "verify"
  }
}
