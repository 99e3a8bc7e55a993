#!/usr/bin/env bash
# test-summary.sh PHASES JSON...: the closing lines of make test.
#   - each phase and its time (PHASES: "name seconds exit" lines);
#   - the ten slowest tests over the go test JSON streams (gotestsum
#     --jsonfile), so a slow test added shows up in its first run;
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

count() { cat "${jsons[@]}" /dev/null | grep '"Test":' | grep -c "\"Action\":\"$1\"" || true; }
echo "tests: $(count pass) passed, $(count fail) failed, $(count skip) skipped"
