#!/usr/bin/env bash
# Builds winbake-agent for windows/amd64 into
# internal/agent/agentbin/bin/winbake-agent.exe, where package agentbin
# embeds it into the plugin. Run it before building or testing the plugin
# (`make agent`). Static (CGO_ENABLED=0), without local paths (-trimpath),
# VCS stamps or symbols (-s -w), so the same sources give the same bytes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/internal/agent/agentbin/bin"
out="$dir/winbake-agent.exe"
# A dot-file is not embedded, so a failed build never ends up in the plugin.
tmp=$(mktemp "$dir/.winbake-agent.exe.XXXXXX")
trap 'rm -f "$tmp"' EXIT
cd "$root"
CGO_ENABLED=0 GOOS=windows GOARCH=amd64 \
  go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$tmp" ./cmd/winbake-agent
mv -f "$tmp" "$out"
trap - EXIT
echo "built $out ($(wc -c <"$out") bytes)"
