#!/usr/bin/env bash
# make test: everything CI runs, from nothing.
#
# Sequential: Debian packages, Packer, generated files, vet, the plugin and
# the stand-in ISO. Then side by side, each with its log in build/logs/:
# the demo (scripts/demo.sh, exactly as users run it), the race-enabled
# unit tests and the Packer-in-the-loop e2e tests. Their VMs share the
# machine's VM slots (internal/testing/vmslot: one VM per core), so two VMs
# run at a time on two cores and the CPU does not sit idle behind one TCG
# VM. Last: packer-sdc plugin-check, and a summary with the time of each
# phase, the ten slowest tests and how busy the VM slots were.
#
# The test Keystone/glance-api is stopped at the end whatever the outcome;
# the e2e target stops its libvirt lab itself, the demo its own Keystone.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/logs
phases=build/logs/phases.txt
: > "$phases"
# Every VM slot hold of the run (internal/testing/vmslot, scripts/vm-slot.sh),
# for the summary's slot table.
export WINBAKE_VM_SLOT_LOG=$PWD/build/logs/vm-slots.log
: > "$WINBAKE_VM_SLOT_LOG"
began=$(date +%s)

# run NAME CMD...: one sequential phase, its output shown as it comes.
run() {
  local name=$1 start rc; shift
  start=$(date +%s)
  echo "== $name"
  "$@"; rc=$?
  echo "$name $(( $(date +%s) - start )) $rc" >> "$phases"
  if ((rc != 0)); then
    echo "== $name failed (exit $rc)"
    finish 1
  fi
}

# finish CODE: summary, then exit.
finish() {
  bash scripts/openstack-lab.sh stop >/dev/null 2>&1 || true
  bash scripts/test-summary.sh "$phases" build/test-unit.json build/test-e2e.json
  echo "make test: $(( $(date +%s) - began )) s"
  exit "$1"
}
trap 'bash scripts/openstack-lab.sh stop >/dev/null 2>&1 || true' EXIT

run deps make --no-print-directory deps
run packer make --no-print-directory packer
run generate-check make --no-print-directory generate-check
run vet make --no-print-directory vet
run lint make --no-print-directory lint
run build make --no-print-directory build standin-iso
# Compile the test binaries first, so the compiler does not compete with
# the first VMs of the parallel phase (a TCG VM starved of CPU misses the
# "Press any key to boot from CD" prompt).
run compile-tests bash -c 'go test -race -count=1 -run "^$" ./... >/dev/null && go test -tags e2e -c -o /dev/null ./e2e'
run openstack-lab make --no-print-directory openstack-lab

# Side by side: demo, unit, e2e (everything they need was built above).
rm -f build/test-unit.json build/test-e2e.json
declare -A pids starts
declare -A commands=([demo]="bash scripts/demo.sh" [unit]="make --no-print-directory run-unit" [e2e]="make --no-print-directory run-e2e")
for name in demo unit e2e; do
  starts[$name]=$(date +%s)
  ${commands[$name]} > "build/logs/$name.log" 2>&1 &
  pids[$name]=$!
  echo "== $name: started, output in build/logs/$name.log"
done
failed=0
for name in demo unit e2e; do
  wait "${pids[$name]}"; rc=$?
  echo "$name $(( $(date +%s) - starts[$name] )) $rc" >> "$phases"
  echo
  echo "== $name (exit $rc, $(( $(date +%s) - starts[$name] )) s since start):"
  cat "build/logs/$name.log"
  ((rc == 0)) || failed=1
done
((failed == 0)) || { echo "== a parallel phase failed"; finish 1; }

run plugin-check make --no-print-directory plugin-check
finish 0
