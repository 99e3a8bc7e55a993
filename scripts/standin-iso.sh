#!/usr/bin/env bash
# Builds the stand-in "Windows install ISO" winbake's builders are tested
# against: a Debian kernel, a busybox + Go (internal/testing/cmd/winbake-standin) initramfs that
# behaves like Windows Setup, sources/install.wim with real Windows Server 2022
# image names, and the boot loaders Setup writes to the installed disk. The ISO
# boots under BIOS (El Torito) and UEFI (EFI system image), console on COM1.
# Under UEFI it boots like real Linux and Windows media also with Secure Boot:
# Debian's shim (signed with the Microsoft UEFI CA 2011, which firmware with
# Microsoft's keys trusts) as \EFI\BOOT\BOOTX64.EFI, Debian's signed GRUB
# (trusted by shim) next to it, and Debian's signed kernel with its signed
# modules; the installed disk's ESP gets the same chain.
#
#   scripts/standin-iso.sh [OUTPUT]   (default build/standin/winbake-standin.iso)
#
# The kernel and its modules are extracted from the Debian .deb (never
# installed) and cached in ${XDG_CACHE_HOME:-$HOME/.cache}/winbake/standin-kernel-<version>/;
# shim and the signed GRUB likewise (shim-signed, grub-efi-amd64-signed) in
# standin-efi-<shim version>_<grub version>/. Installing those packages would
# run their maintainer scripts, which call grub-install on EFI hosts.
# Needs: apt (apt-cache, apt-get download), dpkg-deb, kmod (depmod, modprobe),
# busybox-static, cpio, zstd, wimtools, xorriso, mtools, grub-common,
# grub-pc-bin, sbsigntool (sbverify), go.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root/build/standin/winbake-standin.iso}
case $out in /*) ;; *) out=$PWD/$out ;; esac
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/winbake
# Kernel arguments besides the console and the boot mode (STANDIN_KERNEL_ARGS
# overrides them, e.g. "" to see the kernel's messages).
kargs=${STANDIN_KERNEL_ARGS-quiet loglevel=3}

log() { echo "standin-iso: $*" >&2; }
need() {
  command -v "$1" >/dev/null 2>&1 || { log "$1 is missing: apt-get install -y --no-install-recommends $2"; exit 1; }
}
need apt-cache apt
need dpkg-deb dpkg
need depmod kmod
need busybox busybox-static
need cpio cpio
need zstd zstd
need wimcapture wimtools
need xorriso xorriso
need mformat mtools
need grub-mkrescue grub-common
need grub-mkimage grub-common
need sbverify sbsigntool
[[ -d /usr/lib/grub/i386-pc ]] || { log "GRUB BIOS images missing: apt-get install -y --no-install-recommends grub-pc-bin"; exit 1; }
busybox_bin=$(command -v busybox)
if [[ $(ldd "$busybox_bin" 2>&1 || true) != *"not a dynamic"* ]]; then
  log "$busybox_bin is not static: apt-get install -y --no-install-recommends busybox-static"; exit 1
fi

# Modules for the devices the VMs use: CD (IDE on pc, AHCI on q35), floppy,
# virtio (block, SCSI, net, and console: the QEMU guest agent's
# virtio-serial port), SATA/IDE disks, e1000/e1000e NICs, FAT (ESP, floppy,
# installed "Windows" volume) and its code pages, efivarfs.
modules=(sr_mod cdrom isofs floppy vfat fat nls_ascii nls_cp437 nls_utf8
  virtio_pci virtio_blk virtio_scsi virtio_net virtio_console ahci ata_piix sd_mod e1000 e1000e efivarfs)

# --- kernel, cached ---------------------------------------------------------
kernel_package() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
kpkg=$(kernel_package)
if [[ -z $kpkg && $(id -u) -eq 0 ]]; then
  # Twice: a mirror hiccup should not fail the run; its error is shown.
  for try in 1 2; do
    log "no package lists: apt-get update (try $try)"
    if out=$(apt-get update -qq 2>&1); then break; fi
    log "apt-get update failed: $out"
    sleep 5
  done
  kpkg=$(kernel_package)
fi
[[ -n $kpkg ]] || { log "apt-cache depends linux-image-amd64 names no versioned kernel package (run apt-get update)"; exit 1; }
kver=${kpkg#linux-image-}
kcache=$cache_root/standin-kernel-$kver
want_list=$(printf '%s\n' "${modules[@]}")
cached() { [[ -f $1/complete && "$(cat "$1/modules.list" 2>/dev/null)" == "$want_list" ]]; }
if ! cached "$kcache"; then
  log "extracting $kpkg into $kcache"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  if (cd "$tmp" && apt-get download -q "$kpkg" >/dev/null 2>&1); then
    dpkg-deb -x "$tmp"/"$kpkg"_*.deb "$tmp/x"
    depmod -b "$tmp/x" "$kver"
    rm -rf "$kcache.new" && mkdir -p "$kcache.new/modules"
    cp "$tmp/x/boot/vmlinuz-$kver" "$kcache.new/vmlinuz"
    cp "$tmp/x/boot/config-$kver" "$kcache.new/config"
    for m in "${modules[@]}"; do
      modprobe -d "$tmp/x" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
    done | sort -u | while read -r ko; do
      rel=${ko#"$tmp/x/"}
      mkdir -p "$kcache.new/modules/$(dirname "$rel")"
      cp "$ko" "$kcache.new/modules/$rel"
    done
    for f in modules.order modules.builtin modules.builtin.modinfo; do
      cp "$tmp/x/lib/modules/$kver/$f" "$kcache.new/modules/lib/modules/$kver/$f"
    done
    printf '%s\n' "$want_list" >"$kcache.new/modules.list"
    touch "$kcache.new/complete"
    rm -rf "$kcache" && mv "$kcache.new" "$kcache"
  else
    # Offline: fall back to the newest kernel already cached with the same modules.
    fallback=
    for d in $(ls -d "$cache_root"/standin-kernel-*/ 2>/dev/null | sort -V); do
      cached "${d%/}" && fallback=${d%/}
    done
    [[ -n $fallback ]] || { log "apt-get download $kpkg failed and no kernel is cached"; exit 1; }
    log "apt-get download $kpkg failed; using the cached ${fallback##*/}"
    kcache=$fallback
    kver=${fallback##*/standin-kernel-}
  fi
  rm -rf "$tmp"; trap - EXIT
fi

# --- Secure Boot chain, cached ------------------------------------------------
# shimx64.efi: Debian's shim, signed by Microsoft. gcdx64.efi: the signed
# GRUB for CDs (its embedded config sources ($root)/boot/grub/grub.cfg of the
# disc it booted from). grubx64.efi: the signed GRUB for disks (it sources
# /EFI/debian/grub.cfg of its ESP). Both are monolithic: under Secure Boot they
# load no modules, so the configs below use only commands built into them.
candidate() { apt-cache show --no-all-versions "$1" 2>/dev/null | awk '/^Version:/ {print $2; exit}'; }
shimver=$(candidate shim-signed)
grubver=$(candidate grub-efi-amd64-signed)
efi_cached() { [[ -f $1/complete ]]; }
ecache=$cache_root/standin-efi-${shimver}_${grubver}
if [[ -z $shimver || -z $grubver ]] || ! efi_cached "$ecache"; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  if [[ -n $shimver && -n $grubver ]] && (cd "$tmp" && apt-get download -q shim-signed grub-efi-amd64-signed >/dev/null 2>&1); then
    log "extracting shim-signed $shimver and grub-efi-amd64-signed $grubver into $ecache"
    for d in "$tmp"/*.deb; do dpkg-deb -x "$d" "$tmp/x"; done
    rm -rf "$ecache.new" && mkdir -p "$ecache.new"
    cp "$tmp/x/usr/lib/shim/shimx64.efi.signed" "$ecache.new/shimx64.efi"
    cp "$tmp/x/usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed" "$ecache.new/gcdx64.efi"
    cp "$tmp/x/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed" "$ecache.new/grubx64.efi"
    touch "$ecache.new/complete"
    rm -rf "$ecache" && mv "$ecache.new" "$ecache"
  else
    fallback=
    for d in $(ls -d "$cache_root"/standin-efi-*/ 2>/dev/null | sort -V); do
      efi_cached "${d%/}" && fallback=${d%/}
    done
    [[ -n $fallback ]] || { log "apt-get download shim-signed grub-efi-amd64-signed failed and no signed boot loaders are cached"; exit 1; }
    log "apt-get download shim-signed grub-efi-amd64-signed failed; using the cached ${fallback##*/}"
    ecache=$fallback
  fi
  rm -rf "$tmp"; trap - EXIT
fi
# The chain OVMF's Microsoft keys accept: shim by Microsoft, GRUB and the
# kernel by Debian (shim carries Debian's CA).
signed_by() {
  sbverify --list "$1" 2>/dev/null | grep -q "issuer: .*CN=$2\$" || { log "$1 is not signed by $2 (sbverify --list)"; exit 1; }
}
signed_by "$ecache/shimx64.efi" "Microsoft Corporation UEFI CA 2011"
signed_by "$ecache/gcdx64.efi" "Debian Secure Boot CA"
signed_by "$ecache/grubx64.efi" "Debian Secure Boot CA"
signed_by "$kcache/vmlinuz" "Debian Secure Boot CA"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- initramfs --------------------------------------------------------------
log "building internal/testing/cmd/winbake-standin"
(cd "$root" && CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -ldflags='-s -w' \
  -o "$work/winbake-standin" ./internal/testing/cmd/winbake-standin)

ir=$work/initramfs
mkdir -p "$ir"/{bin,sbin,dev,proc,sys,run,tmp,mnt,etc,root,usr/bin,usr/sbin}
cp "$busybox_bin" "$ir/bin/busybox"
for app in $("$busybox_bin" --list); do
  [[ $app == busybox ]] || ln -s busybox "$ir/bin/$app"
done
cp "$work/winbake-standin" "$ir/init"
cp -a "$kcache/modules/lib" "$ir/"
depmod -b "$ir" "$kver"
cat >"$ir/etc/udhcpc.script" <<'EOF'
#!/bin/sh
# udhcpc event script of the winbake stand-in: configure the lease.
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    for r in $router; do
      ip route add default via "$r" dev "$interface"
      # Windows resolves its default gateway as soon as it has an address,
      # which puts the guest into the host's neighbour table on a bridge.
      arping -c 1 -w 2 -I "$interface" "$r" >/dev/null 2>&1 &
      break
    done ;;
esac
exit 0
EOF
chmod 755 "$ir/etc/udhcpc.script" "$ir/init"
echo "root:x:0:0:root:/root:/bin/sh" >"$ir/etc/passwd"
(cd "$ir" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) | zstd -q -19 >"$work/initrd.img"

# --- boot loaders for the installed disk --------------------------------------
# Setup writes these to the disk it installs to: boot.img (first 440 bytes of
# the MBR) and core.img (sectors 1.. of the MBR gap) for BIOS; for UEFI shim
# as \EFI\BOOT\BOOTX64.EFI (and bootmgfw.efi) with the signed GRUB as
# grubx64.efi beside it and this config as \EFI\debian\grub.cfg. Both find
# the installed volume by its kernel and boot it.
iso=$work/iso
mkdir -p "$iso/boot/grub" "$iso/sources" "$iso/winbake/grub" "$iso/winbake/efi"
cat >"$work/disk.cfg" <<EOF
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
echo "Windows Boot Manager (winbake stand-in): starting Windows"
search --no-floppy --file --set=root /winbake/boot/vmlinuz
linux /winbake/boot/vmlinuz console=ttyS0,115200 $kargs winbake.boot=disk
initrd /winbake/boot/initrd.img
echo "winbake stand-in: starting the kernel"
boot
EOF
grub_mods="fat part_msdos part_gpt linux serial terminal search search_fs_file echo test boot"
grub-mkimage -O i386-pc -o "$iso/winbake/grub/core.img" -c "$work/disk.cfg" -p /boot/grub biosdisk $grub_mods
cp /usr/lib/grub/i386-pc/boot.img "$iso/winbake/grub/boot.img"
core_sectors=$(( ($(stat -c %s "$iso/winbake/grub/core.img") + 511) / 512 ))
((core_sectors < 2000)) || { log "core.img is $core_sectors sectors: too large for the MBR gap"; exit 1; }
cp "$ecache/shimx64.efi" "$iso/winbake/efi/shimx64.efi"
cp "$ecache/grubx64.efi" "$iso/winbake/efi/grubx64.efi"
cp "$work/disk.cfg" "$iso/winbake/efi/grub.cfg"

# The ISO's EFI system image: shim, which loads grubx64.efi from its own
# directory: here the signed GRUB for CDs.
efi_img=$iso/boot/efi.img
efi_kb=$(( ($(stat -c %s "$ecache/shimx64.efi") + $(stat -c %s "$ecache/gcdx64.efi")) / 1024 + 512 ))
mformat -i "$efi_img" -C -T $((efi_kb * 2)) -h 2 -s 32 -N 0 -v WINBAKE_EFI ::
mmd -i "$efi_img" ::/EFI ::/EFI/BOOT
mcopy -i "$efi_img" "$ecache/shimx64.efi" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$efi_img" "$ecache/gcdx64.efi" ::/EFI/BOOT/grubx64.efi

# --- install.wim ------------------------------------------------------------
wimtree=$work/wimtree
mkdir -p "$wimtree/Windows/System32"
echo "winbake stand-in: not really a kernel" >"$wimtree/Windows/System32/ntoskrnl.exe"
first=1
while IFS='|' read -r name edition itype; do
  tool=wimappend; ((first)) && tool=wimcapture; first=0
  "$tool" "$wimtree" "$iso/sources/install.wim" "$name" "$name" --compress=none \
    --image-property "DISPLAYNAME=$name" --image-property "FLAGS=$edition" \
    --image-property "WINDOWS/ARCH=9" \
    --image-property "WINDOWS/PRODUCTNAME=Microsoft® Windows® Operating System" \
    --image-property "WINDOWS/EDITIONID=$edition" --image-property "WINDOWS/INSTALLATIONTYPE=$itype" \
    --image-property "WINDOWS/PRODUCTTYPE=ServerNT" \
    --image-property "WINDOWS/VERSION/MAJOR=10" --image-property "WINDOWS/VERSION/MINOR=0" \
    --image-property "WINDOWS/VERSION/BUILD=20348" --image-property "WINDOWS/VERSION/SPBUILD=587" \
    --image-property "WINDOWS/LANGUAGES/LANGUAGE=en-US" --image-property "WINDOWS/LANGUAGES/DEFAULT=en-US" >/dev/null
done <<'EOF'
Windows Server 2022 SERVERSTANDARDCORE|ServerStandardCore|Server Core
Windows Server 2022 SERVERSTANDARD|ServerStandard|Server
Windows Server 2022 SERVERDATACENTERCORE|ServerDatacenterCore|Server Core
Windows Server 2022 SERVERDATACENTER|ServerDatacenter|Server
EOF

# --- the ISO ----------------------------------------------------------------
cp "$kcache/vmlinuz" "$iso/boot/vmlinuz"
cp "$work/initrd.img" "$iso/boot/initrd.img"
cat >"$iso/winbake/standin.txt" <<EOF
winbake stand-in Windows install media
kernel $kver
EOF
# The boot menu behaves like a Windows ISO. Under UEFI it prints "Press any
# key to boot from CD or DVD..." and waits 5 s: the space bar starts Setup;
# without it the firmware boots the next device (the installed disk, or
# nothing on an empty one), which is why UEFI builds type a boot_command.
# Under BIOS (where Windows media boot the CD without asking while the disk
# is empty) Setup starts by itself. Once a disk holds the installed system,
# both boot that disk without a key, so Setup does not start again when the
# ISO stays attached after the first reboot.
cat >"$iso/boot/grub/grub.cfg" <<EOF
serial --unit=0 --speed=115200
terminal_output serial
if [ "\$grub_platform" = efi ]; then
  terminal_input serial console
  set timeout_style=hidden
  set timeout=5
  set default=nextdevice
  if search --no-floppy --file --set=installed /winbake/boot/vmlinuz; then
    set default=disk
  fi
  echo "Press any key to boot from CD or DVD..."
else
  terminal_input serial
  set timeout=1
  set timeout_style=menu
  set default=setup
  if search --no-floppy --file --set=installed /winbake/boot/vmlinuz; then
    set default=disk
    echo "Press any key to boot from CD or DVD..."
  fi
fi
menuentry "Windows Setup (winbake stand-in)" --id setup --hotkey=" " {
  echo "winbake stand-in: loading Windows Setup"
  linux /boot/vmlinuz console=ttyS0,115200 $kargs winbake.boot=setup
  initrd /boot/initrd.img
  echo "winbake stand-in: starting the kernel"
}
menuentry "Boot from the installed disk" --id disk {
  set root=\$installed
  linux /winbake/boot/vmlinuz console=ttyS0,115200 $kargs winbake.boot=disk
  initrd /winbake/boot/initrd.img
  echo "winbake stand-in: starting the kernel"
}
menuentry "Boot the next device" --id nextdevice {
  echo "winbake stand-in: no key pressed, the firmware boots the next device"
  exit
}
EOF
mkdir -p "$(dirname "$out")"
log "writing $out"
# grub-mkrescue makes the BIOS El Torito image (GRUB i386-pc reading
# /boot/grub/grub.cfg); xorriso's commands after "--" add the EFI system image
# as the second El Torito entry.
grub-mkrescue -d /usr/lib/grub/i386-pc -o "$out.tmp" --locales= --fonts= --themes= --compress=xz "$iso" -- \
  -volid WINBAKE_STANDIN_X64FRE -boot_image any next -boot_image any efi_path=/boot/efi.img \
  >/dev/null 2>"$work/mkrescue.log" || { cat "$work/mkrescue.log" >&2; exit 1; }
mv "$out.tmp" "$out"
log "done: $out ($(du -h "$out" | cut -f1), kernel $kver)"
