#!/usr/bin/env bash
# Prints one closing line over the go test JSON streams given (gotestsum
# --jsonfile), counting every test and subtest:
#   tests: N passed, N failed, N skipped
set -euo pipefail
count() { cat "$@" | grep '"Test":' | grep -c "\"Action\":\"$action\"" || true; }
action=pass; passed=$(count "$@")
action=fail; failed=$(count "$@")
action=skip; skipped=$(count "$@")
echo "tests: $passed passed, $failed failed, $skipped skipped"
