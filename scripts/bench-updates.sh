#!/usr/bin/env bash
# Delivery benchmark of winbake-updates (make bench-updates): 1 GiB of
# update packages into the stand-in guest through the HTTP channel (package
# server + winbake-agent fetch) against Packer's WinRM upload of a 16 MiB
# sample, same guest, same run, and against a plain loopback HTTP copy of
# the same packages into files on the same disk. The last line is
#   updates-delivery speedup: N.Nx over WinRM; HTTP delivery G.GG GiB/s, R.RR of a plain loopback copy (G.GG GiB/s)
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
