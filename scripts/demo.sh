#!/usr/bin/env bash
# The demo: winbake under a real Packer, from nothing.
# Installs the freshly built plugin into a demo plugin directory, validates
# every example, then runs example/compress-for-clouds.pkr.hcl on a small
# generated disk and shows what came out.
set -euo pipefail
cd "$(dirname "$0")/.."

packer=.tools/bin/packer
demo=build/demo
rm -rf "$demo"
mkdir -p "$demo"
export PACKER_PLUGIN_PATH=$PWD/$demo/plugins PACKER_CONFIG_DIR=$PWD/$demo/config CHECKPOINT_DISABLE=1

"$packer" plugins install --path ./packer-plugin-winbake github.com/winbake/winbake
for example in example/*.pkr.hcl; do
  "$packer" validate "$example"
done

# A 64 MiB qcow2 disk with some content stands in for a golden image.
qemu-img create -q -f qcow2 "$demo/golden.qcow2" 64M
head -c 8M /dev/urandom > "$demo/data.bin"
qemu-img dd -f raw -O qcow2 if="$demo/data.bin" of="$demo/golden.qcow2" conv=notrunc 2>/dev/null ||
  qemu-io -f qcow2 -c "write -P 0x5a 0 8M" "$demo/golden.qcow2" >/dev/null

"$packer" build -var disk_image="$demo/golden.qcow2" -var output_dir="$demo/out" example/compress-for-clouds.pkr.hcl
echo
ls -l "$demo/out"
