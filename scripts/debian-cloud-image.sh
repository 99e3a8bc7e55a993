#!/usr/bin/env bash
# Builds the Debian cloud image winbake's Linux tests boot: Debian from
# Debian's packages (mmdebstrap --variant=minbase), with the cloud kernel,
# the real cloud-init, openssh-server and cloud-guest-utils (growpart), on
# one ext4 partition of an MBR disk that boots by itself under BIOS (GRUB's
# boot.img in the MBR, core.img in the gap before the partition), console on
# COM1. No network but Debian's mirror is needed.
#
#   scripts/debian-cloud-image.sh [OUTPUT]   (default build/debian/debian-12-cloud.qcow2)
#
# The image is cached in ${XDG_CACHE_HOME:-$HOME/.cache}/winbake/debian-cloud-<key>/,
# where <key> is the SHA-256 of this script and the candidate versions of the
# packages it installs (apt-cache): a change to either builds a new image, so
# a stale cache cannot hide it. The last line printed is the cached image's
# path; OUTPUT is a copy of it.
#
# Needs (root): mmdebstrap, e2fsprogs (mkfs.ext4 -d), fdisk (sfdisk),
# grub-common (grub-mkimage), grub-pc-bin, qemu-utils.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root/build/debian/debian-12-cloud.qcow2}
case $out in /*) ;; *) out=$PWD/$out ;; esac
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/winbake
suite=bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# The file-system label the boot loader and fstab find the root by.
label=rootfs
packages=(systemd-sysv udev kmod dbus iproute2 e2fsprogs fdisk locales
  linux-image-cloud-amd64 cloud-init cloud-guest-utils openssh-server sudo)

log() { echo "debian-cloud-image: $*" >&2; }
need() {
  command -v "$1" >/dev/null 2>&1 || { log "$1 is missing: apt-get install -y --no-install-recommends $2"; exit 1; }
}
need mmdebstrap mmdebstrap
need mkfs.ext4 e2fsprogs
need sfdisk fdisk
need grub-mkimage grub-common
need qemu-img qemu-utils
[[ -f /usr/lib/grub/i386-pc/boot.img ]] || { log "GRUB BIOS images missing: apt-get install -y --no-install-recommends grub-pc-bin"; exit 1; }
[[ $(id -u) -eq 0 ]] || { log "mmdebstrap's root mode needs root"; exit 1; }

# --- cache key ----------------------------------------------------------------
versions() {
  for p in "${packages[@]}" grub-pc-bin; do
    printf '%s=%s\n' "$p" "$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2; exit}')"
  done
  # The kernel the metapackage pulls in.
  { apt-cache depends linux-image-cloud-amd64 2>/dev/null || true; } | awk '/Depends: linux-image-[0-9]/ {print "kernel=" $2; exit}'
}
missing() { grep '=$\|=(none)$' <<<"$1" | cut -d= -f1 | tr '\n' ' '; }
v=$(versions)
if [[ -n $(missing "$v") ]]; then
  log "no candidate for $(missing "$v")in the package lists: apt-get update"
  apt-get update -qq >/dev/null 2>&1 || log "apt-get update failed"
  v=$(versions)
fi
if [[ -n $(missing "$v") ]]; then
  # No package lists (offline, or apt busy elsewhere): the newest image
  # already cached, as the stand-in ISO falls back to its cached kernel.
  fallback=
  for d in $(ls -dt "$cache_root"/debian-cloud-*/ 2>/dev/null); do
    [[ -f $d/complete ]] && { fallback=${d%/}; break; }
  done
  [[ -n $fallback ]] || { log "apt-cache knows no candidate for: $(missing "$v")and no image is cached"; exit 1; }
  log "apt-cache knows no candidate for: $(missing "$v"); using the cached ${fallback##*/}"
  v=
  cache=$fallback
else
  key=$( { sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1; echo "$suite $mirror"; echo "$v"; } | sha256sum | cut -c1-16)
  cache=$cache_root/debian-cloud-$key
fi
image=$cache/debian-12-cloud.qcow2

if [[ ! -f $cache/complete ]]; then
  start=$(date +%s)
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  rootfs=$work/rootfs
  log "building into $cache (mmdebstrap $suite, ${#packages[@]} packages)"
  # The customize hook runs with the new system's /proc, /sys and /dev
  # mounted; it configures what a cloud image's build configures: fstab by
  # label, a fresh machine-id at first boot, DHCP by systemd-networkd (which
  # cloud-init's networkd renderer writes for), a serial console and GRUB's
  # config reading the kernel through Debian's /vmlinuz and /initrd.img links.
  mmdebstrap --variant=minbase --mode=root --format=directory \
    --include="$(IFS=,; echo "${packages[*]}")" \
    --aptopt='Acquire::Retries "3"' \
    --customize-hook="echo 'LABEL=$label / ext4 defaults,discard,errors=remount-ro 0 1' >\"\$1/etc/fstab\"" \
    --customize-hook='echo localhost >"$1/etc/hostname"' \
    --customize-hook='chroot "$1" systemctl enable systemd-networkd.service serial-getty@ttyS0.service' \
    --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*; : >"$1/etc/machine-id"; rm -f "$1/var/lib/dbus/machine-id"' \
    --customize-hook='mkdir -p "$1/boot/grub"' \
    --customize-hook='printf "%s\n" "# The instance resolves its own hostname (sudo asks)." "manage_etc_hosts: true" "# The locale the image has, C.UTF-8 from glibc: no other is generated, and with cloud-init default en_US.UTF-8 update-locale fails." "locale: C.UTF-8" >"$1/etc/cloud/cloud.cfg.d/01_winbake_test.cfg"' \
    --customize-hook="printf '%s\n' 'serial --unit=0 --speed=115200' 'terminal_input serial console' 'terminal_output serial console' 'set timeout=0' 'menuentry Debian {' '  linux /vmlinuz root=LABEL=$label ro console=tty0 console=ttyS0,115200' '  initrd /initrd.img' '}' >\"\$1/boot/grub/grub.cfg\"" \
    --customize-hook='chroot "$1" apt-get clean; rm -rf "$1"/var/lib/apt/lists/* "$1"/var/log/*.log "$1"/tmp/*' \
    "$suite" "$rootfs" "$mirror" >"$work/mmdebstrap.log" 2>&1 || { tail -40 "$work/mmdebstrap.log" >&2; exit 1; }
  [[ -e $rootfs/vmlinuz && -e $rootfs/initrd.img ]] || { log "the kernel package left no /vmlinuz and /initrd.img links"; exit 1; }

  # The root file system: its content plus a quarter free, at least 1 GiB,
  # written by mkfs.ext4 -d (no mount). growpart and resize2fs grow it to
  # the instance's disk at first boot.
  used_mib=$(du -sm --apparent-size "$rootfs" | cut -f1)
  fs_mib=$(( used_mib * 5 / 4 + 64 ))
  ((fs_mib >= 1024)) || fs_mib=1024
  mkfs.ext4 -q -L "$label" -d "$rootfs" "$work/rootfs.ext4" "${fs_mib}M"

  # The disk: MBR, one bootable Linux partition from 1 MiB; GRUB's boot.img
  # (its first 440 bytes: the MBR's code area) reads core.img from sector 1,
  # and core.img finds the partition by its label and reads the config.
  raw=$work/disk.raw
  truncate -s $(( (fs_mib + 1) * 1024 * 1024 )) "$raw"
  printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q "$raw"
  dd if="$work/rootfs.ext4" of="$raw" bs=1M seek=1 conv=notrunc,sparse status=none
  printf '%s\n' 'search --no-floppy --label --set=root '"$label" 'set prefix=($root)/boot/grub' 'configfile /boot/grub/grub.cfg' >"$work/core.cfg"
  grub-mkimage -O i386-pc -o "$work/core.img" -c "$work/core.cfg" -p /boot/grub \
    biosdisk part_msdos ext2 search search_label configfile linux normal serial terminal echo test
  core_sectors=$(( ($(stat -c %s "$work/core.img") + 511) / 512 ))
  ((core_sectors < 2047)) || { log "core.img is $core_sectors sectors: too large for the gap before the partition"; exit 1; }
  dd if=/usr/lib/grub/i386-pc/boot.img of="$raw" bs=440 count=1 conv=notrunc status=none
  dd if="$work/core.img" of="$raw" bs=512 seek=1 conv=notrunc status=none

  rm -rf "$cache.new" && mkdir -p "$cache.new"
  qemu-img convert -q -c -f raw -O qcow2 "$raw" "$cache.new/debian-12-cloud.qcow2"
  { echo "suite=$suite"; echo "$v"; echo "build_seconds=$(( $(date +%s) - start ))"; } >"$cache.new/versions.txt"
  touch "$cache.new/complete"
  rm -rf "$cache" && mv "$cache.new" "$cache"
  rm -rf "$work"; trap - EXIT
  log "built in $(( $(date +%s) - start )) s: $(du -h "$image" | cut -f1) qcow2, ${fs_mib} MiB disk"
fi
mkdir -p "$(dirname "$out")"
if [[ $out != "$image" ]]; then
  cp --reflink=auto "$image" "$out.tmp" && mv "$out.tmp" "$out"
fi
echo "$image"
