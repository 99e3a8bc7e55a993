#!/usr/bin/env bash
# Installs, only when missing, the Debian packages winbake's tests and demo use.
# Runs `apt-get update` once, and only when something has to be installed.
set -euo pipefail

packages=(
  qemu-system-x86 qemu-utils ovmf swtpm swtpm-tools   # the VM, its firmware and TPM
  xorriso mtools dosfstools                           # install media (CD, floppy)
  genisoimage 7zip udftools                           # independent ISO/UDF writers and readers for tests
  wimtools                                            # real WIM images for install.wim checks
  busybox-static cpio zstd kmod                       # the stand-in guest's initramfs
  grub-common grub-pc-bin grub-efi-amd64-bin          # the stand-in ISO's BIOS boot, an unsigned UEFI GRUB for tests
  sbsigntool                                          # sbverify: the stand-in's Secure Boot chain is signed
  xz-utils                                            # dd.xz output
  pigz                                                # bench-compress: the parallel gzip users would run
  libvirt-daemon-system libvirt-daemon-driver-qemu   # a real libvirtd for winbake-libvirt tests
  dnsmasq-base iptables                               # libvirt networks: DHCP leases, firewall rules
  openssh-server                                      # qemu+libssh: sshd on loopback in front of libvirtd
  libxml2-utils                                       # xmllint, behind virt-xml-validate: domain XML against libvirt's schema
  glance-api glance-common python3-glance             # a real Glance for winbake-glance tests
  python3-keystone python3-openstackclient            # a real Keystone and the openstack CLI
  python3-winrm                                       # pywinrm, Ansible's WinRM client: sealed NTLM against the stand-in
  tcpdump                                             # packet captures on the test bridge: no credentials on the wire
  e2fsprogs                                           # debugfs: reading a Linux image's files without mounting it
  python3-libvhdi                                     # libvhdi: a VHDX reader independent of QEMU for the vhdx writer tests
  mmdebstrap fdisk                                    # the Debian cloud image the Linux tests boot (scripts/debian-cloud-image.sh)
  ca-certificates git make gcc                        # toolchain basics
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "deps: all ${#packages[@]} Debian packages present"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "deps: missing Debian packages: ${missing[*]}" >&2
  echo "deps: run as root, or install them: apt-get install ${missing[*]}" >&2
  exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: installed ${#missing[@]} package(s)"
