#!/usr/bin/env bash
# The demo: winbake's main job under a real Packer, from nothing.
# Installs the freshly built plugin into a demo plugin directory, validates
# every example, installs the stand-in Windows ISO (make standin-iso) into a
# golden disk with winbake-qemu, and shows where the artifact is. (Turning
# that disk into cloud formats is example/compress-for-clouds.pkr.hcl; its
# dd.* outputs read the whole virtual disk, minutes for a 64 GiB disk.)
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

"$packer" build -var output_dir="$demo/golden" example/standin.pkr.hcl

echo
echo "golden image and its manifest:"
ls -l "$demo/golden"
