#!/usr/bin/env bash
# test-summary.sh PHASES JSON...: the closing lines of make test.
#   - each phase and its time (PHASES: "name seconds exit" lines);
#   - the ten slowest tests over the go test JSON streams (gotestsum
#     --jsonfile), so a slow test added shows up in its first run;
#   - with WINBAKE_VM_SLOT_LOG (vmslot's holds), the VM slots' busy time
#     and the ten longest holders: the VMs are what the run waits for;
#   - one line counting every test and subtest:
#       tests: N passed, N failed, N skipped
set -uo pipefail
phases=$1; shift
jsons=()
for f in "$@"; do [[ -s $f ]] && jsons+=("$f"); done

echo
echo "phase times:"
while read -r name secs rc; do
  printf '  %-16s %5d s%s\n' "$name" "$secs" "$([[ $rc == 0 ]] || echo "  (exit $rc)")"
done < "$phases"

if ((${#jsons[@]})); then
  echo "ten slowest tests:"
  all=$(mktemp)
  cat "${jsons[@]}" > "$all"
  go tool gotestsum tool slowest --jsonfile "$all" --threshold 1ms 2>/dev/null |
    head -n 10 | sed 's/^/  /'
  rm -f "$all"
fi

slots=${WINBAKE_VM_SLOT_LOG:-}
if [[ -n $slots && -s $slots ]]; then
  awk -v n="${WINBAKE_VM_SLOTS:-$(nproc)}" '
    { d = ($2 - $1) / 1000; held += d; by[$3] += d
      if (first == "" || $1 < first) first = $1
      if ($2 > last) last = $2 }
    END {
      span = (last - first) / 1000
      printf "VM slots: %d slot-seconds held by %d holders in %d s, %.0f%% of %d slots\n", held, length(by), span, (span > 0 ? 100 * held / (span * n) : 0), n
      print "ten longest VM slot holders:"
      for (h in by) printf "  %7.1f s  %s\n", by[h], h | "sort -rn | head -n 10"
    }' "$slots"
fi

count() { cat "${jsons[@]}" /dev/null | grep '"Test":' | grep -c "\"Action\":\"$1\"" || true; }
echo "tests: $(count pass) passed, $(count fail) failed, $(count skip) skipped"
