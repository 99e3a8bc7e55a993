#!/usr/bin/env bash
# Runs `go generate ./...` (packer-sdc mapstructure-to-hcl2 and struct-markdown),
# then renders the docs.
#
# packer-sdc struct-markdown finds the project root by walking up to a
# directory named packer-plugin-*; a clone may have any name, so generation
# runs through a symlink with the expected name.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
link="$root/.tools/src/packer-plugin-winbake"
mkdir -p "$(dirname "$link")"
ln -sfn "$root" "$link"
(cd "$link" && PWD="$link" go generate ./...)
bash "$root/scripts/generate-docs.sh"
