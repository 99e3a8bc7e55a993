#!/usr/bin/env bash
# Provides a real Packer binary at .tools/bin/packer for the tests and the demo.
#
# Packer is built from its Go module (the proxy here serves pinned versions only,
# so `go install pkg@version` cannot be used). The first build takes minutes, so
# the binary is also kept in a versioned cache under $HOME/.cache/winbake/ that
# survives fresh clones.
set -euo pipefail

PACKER_VERSION=${PACKER_VERSION:-1.16.0}
root=$(cd "$(dirname "$0")/.." && pwd)
target="$root/.tools/bin/packer"
cache_dir="${WINBAKE_CACHE:-$HOME/.cache/winbake}/packer-$PACKER_VERSION"
cached="$cache_dir/packer"

has_version() { [[ -x "$1" ]] && "$1" version 2>/dev/null | head -n1 | grep -qx "Packer v$PACKER_VERSION"; }

if has_version "$target"; then
  exit 0
fi

if ! has_version "$cached"; then
  echo "packer: building Packer v$PACKER_VERSION from the Go module proxy (first time: several minutes)"
  module_dir=$(go mod download -json "github.com/hashicorp/packer@v$PACKER_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  if [[ -z "$module_dir" || ! -d "$module_dir" ]]; then
    echo "packer: could not download github.com/hashicorp/packer@v$PACKER_VERSION" >&2
    exit 1
  fi
  mkdir -p "$cache_dir"
  tmp="$cache_dir/.packer.partial.$$"
  trap 'rm -f "$tmp"' EXIT
  (cd "$module_dir" && CGO_ENABLED=0 go build -trimpath -o "$tmp" .)
  mv "$tmp" "$cached"
fi

mkdir -p "$(dirname "$target")"
cp "$cached" "$target.partial"
mv "$target.partial" "$target"
echo "packer: $("$target" version | head -n1) at .tools/bin/packer"
