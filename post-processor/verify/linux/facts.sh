#!/bin/sh
# What winbake-verify checks on a Linux instance, read as its default user
# over SSH. Each fact follows a "==> name <==" line; the checks read them.
fact() { printf '==> %s <==\n' "$1"; }
fact hostname;        hostname
fact instance-id;     cat /var/lib/cloud/data/instance-id 2>&1
# cloud-init's own record of the boot: its datasource and every error
# (cloudinit/cmd/main.py writes result.json when all stages are done).
fact result.json;     cat /var/lib/cloud/data/result.json 2>&1
fact status;          cloud-init status --long 2>&1; echo "exit=$?"
fact user-data;       cat /var/tmp/winbake-verify-user-data 2>&1
fact sudo;            sudo -n id -u 2>&1
fact root-size;       df -B1 --output=size / 2>&1 | tail -n 1
fact root-device;     findmnt -n -o SOURCE / 2>&1
fact os-release;      cat /etc/os-release 2>&1
