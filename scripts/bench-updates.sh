#!/usr/bin/env bash
# Delivery benchmark of winbake-updates (make bench-updates): 1 GiB of
# update packages into the stand-in guest through the HTTP channel (package
# server + winbake-agent fetch) against Packer's WinRM upload of a 16 MiB
# sample, same guest, same run. The last line is
#   updates-delivery speedup: N.Nx
# WINBAKE_BENCH_HTTP_MIB and WINBAKE_BENCH_WINRM_MIB change the sizes.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
result=$(mktemp)
trap 'rm -f "$result"' EXIT
cd "$root"
WINBAKE_BENCH_RESULT=$result go test -run '^$' -bench '^BenchmarkUpdatesDelivery$' -benchtime 1x -count 1 -timeout 30m ./provisioner/updates/ |
  grep -v -e '^\s*$' -e 'winsim\|vagrant' || true
[[ -s $result ]] || { echo "bench-updates: the benchmark wrote no result" >&2; exit 1; }
tail -n 1 "$result"
