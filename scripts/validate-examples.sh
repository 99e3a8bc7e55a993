#!/usr/bin/env bash
# Checks every template users read: `packer fmt -check` and `packer
# validate` of example/*.pkr.hcl (with the values their users set, from
# example/validate.pkrvars.hcl) and demo/*.pkr.hcl (with the demo's own
# inputs). Files those values name are made under build/validate first.
# PACKER names the packer binary (default .tools/bin/packer); the plugin must
# be installed in PACKER_PLUGIN_PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
packer=${PACKER:-$PWD/.tools/bin/packer}

fixtures=build/validate
mkdir -p "$fixtures"
# The demo and the e2e tests validate side by side under make test.
exec {lock}>"$fixtures.lock"
flock "$lock"
rm -rf "$fixtures"
mkdir -p "$fixtures/updates"
go run ./internal/testing/cmd/winbake-demo inputs "$fixtures"

failed=0 checked=0
# check TEMPLATE ARGS...: quiet when the template is valid, Packer's output
# when it is not.
check() {
  local template=$1 out; shift
  checked=$((checked + 1))
  if ! out=$("$packer" fmt -check -diff "$template" 2>&1 && "$packer" validate "$@" "$template" 2>&1); then
    echo "$out" >&2
    echo "validate-examples: $template failed" >&2
    failed=1
  fi
}
for template in example/*.pkr.hcl; do
  check "$template" -var-file=example/validate.pkrvars.hcl
done
"$packer" fmt -check -diff example/validate.pkrvars.hcl || failed=1
check demo/standin.pkr.hcl -var updates_dir="$fixtures/updates" \
  -var cloudbase_init_msi="$fixtures/CloudbaseInitSetup_Stable_x64.msi" -var winrm_password=Validate-Only-1
if ((failed == 0)); then
  echo "validate-examples: $checked templates formatted and valid"
fi
exit $failed
