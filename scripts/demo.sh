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

# A 64 MiB qcow2 disk holding 8 MiB of data stands in for a golden image.
truncate -s 64M "$demo/golden.raw"
head -c 8M /dev/urandom | dd of="$demo/golden.raw" conv=notrunc status=none
qemu-img convert -O qcow2 "$demo/golden.raw" "$demo/golden.qcow2"
rm "$demo/golden.raw"

"$packer" build -var disk_image="$demo/golden.qcow2" -var output_dir="$demo/out" example/compress-for-clouds.pkr.hcl
echo
ls -l "$demo/out"
