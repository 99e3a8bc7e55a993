#!/usr/bin/env bash
# The demo: winbake's whole job under a real Packer, on the stand-in
# Windows, from nothing (make demo; make test runs it too):
#   install (UEFI, Secure Boot, TPM) -> offline updates with their reboots ->
#   sysprep with cloudbase-init -> qcow2 + dd.gz -> a first boot as a cloud
#   boots it -> published to Glance
# It makes its inputs (update packages, the stand-in cloudbase-init MSI, a
# build password), validates every example, starts a Keystone and a
# glance-api on loopback for the publication (stopped again at the end),
# builds demo/standin.pkr.hcl into build/demo (emptied first), and prints a
# summary: each stage and its time, image sizes, updates, verification
# checks, and the Glance image as `openstack image show` prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
packer=$root/.tools/bin/packer
demo=$root/build/demo
began=$(date +%s)
stage() { echo; echo "demo: $* ($(( $(date +%s) - began )) s)"; }

rm -rf "$demo"
mkdir -p "$demo"
export PACKER_PLUGIN_PATH=$demo/plugins PACKER_CONFIG_DIR=$demo/config CHECKPOINT_DISABLE=1

stage "installing the plugin and making the inputs"
"$packer" plugins install --path ./packer-plugin-winbake github.com/winbake/winbake
go build -o "$demo/winbake-demo" ./internal/testing/cmd/winbake-demo
"$demo/winbake-demo" inputs "$demo/inputs"

stage "validating every example"
PACKER=$packer bash scripts/validate-examples.sh

stage "starting Keystone and glance-api on loopback"
lab=$demo/openstack
export OPENSTACK_LAB_KEYSTONE_PORT=15300 OPENSTACK_LAB_GLANCE_PORT=19592 OPENSTACK_LAB_IMAGE_SIZE_CAP=$((16 << 30))
trap 'bash scripts/openstack-lab.sh stop "$lab" >/dev/null 2>&1 || true' EXIT
bash scripts/openstack-lab.sh start "$lab"
set -a
# shellcheck disable=SC1091
. "$lab/openrc"
set +a

# The build password: new for every run, handed to Packer through the
# environment (never on a command line), masked in Packer's output.
PKR_VAR_winrm_password="Wb-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')-9a"
export PKR_VAR_winrm_password
iso=build/standin/winbake-standin.iso
cat > "$demo/demo.pkrvars.hcl" <<VARS
iso                = "$iso"
iso_checksum       = "sha256:$(sha256sum "$iso" | cut -d' ' -f1)"
output_dir         = "$demo"
updates_dir        = "$demo/inputs/updates"
cloudbase_init_msi = "$demo/inputs/CloudbaseInitSetup_Stable_x64.msi"
image_name         = "winbake demo $(date -u +%Y-%m-%dT%H:%M:%SZ)"
VARS

stage "packer build demo/standin.pkr.hcl"
VM_SLOT_HOLDER=demo bash scripts/vm-slot.sh "$packer" build -timestamp-ui -var-file="$demo/demo.pkrvars.hcl" demo/standin.pkr.hcl 2>&1 | tee "$demo/build.log"

stage "done"
echo
"$demo/winbake-demo" summary "$demo/build.log" "$demo" | tee "$demo/summary.txt"
image_id=$(sed -n 's/^glance image: //p' "$demo/summary.txt")
echo
echo "openstack image show $image_id"
openstack image show "$image_id"
echo
echo "demo: finished in $(( $(date +%s) - began )) s; everything is in $demo"
