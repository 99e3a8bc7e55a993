#!/usr/bin/env bash
# vm-slot.sh CMD ARGS...: runs CMD holding one of the machine's VM slots
# (internal/testing/vmslot: flock on $TMPDIR/winbake-vm-slots/slot.N, N from
# 0 to WINBAKE_VM_SLOTS or the number of CPUs), so the demo's VMs and the
# tests' VMs together never outnumber the cores. Waits for a free slot. With
# WINBAKE_VM_SLOT_LOG set, the hold is appended to it as vmslot logs one
# ("start-ms end-ms holder"; the holder is VM_SLOT_HOLDER, else CMD's name).
set -uo pipefail
dir=${TMPDIR:-/tmp}/winbake-vm-slots
slots=${WINBAKE_VM_SLOTS:-$(nproc)}
mkdir -p "$dir"
while true; do
  for ((i = 0; i < slots; i++)); do
    exec {fd}>"$dir/slot.$i"
    if flock -n "$fd"; then
      start=$(date +%s%3N)
      "$@"
      rc=$?
      if [[ -n ${WINBAKE_VM_SLOT_LOG:-} ]]; then
        echo "$start $(date +%s%3N) ${VM_SLOT_HOLDER:-$(basename "$1")}" >> "$WINBAKE_VM_SLOT_LOG"
      fi
      exit $rc
    fi
    exec {fd}>&-
  done
  sleep 1
done
