#!/usr/bin/env bash
# Test-only host bridge for winbake-qemu's `network = "bridge"` end-to-end
# test: a bridge with an IPv4 address on the host, busybox udhcpd handing
# out leases on it, and the `allow` line qemu-bridge-helper needs in
# /etc/qemu/bridge.conf. Nothing is forwarded off the bridge.
#
#   scripts/bridge-lab.sh start    create it (idempotent); prints the bridge name
#   scripts/bridge-lab.sh stop     remove the bridge, udhcpd and the allow line
#   scripts/bridge-lab.sh status
set -euo pipefail

bridge=${WINBAKE_BRIDGE:-wbbr0}
net=192.168.213
lab=/run/winbake-bridge
pidfile=$lab/udhcpd.pid
conf_dir=/etc/qemu
conf=$conf_dir/bridge.conf
allow="allow $bridge"
added_mark=$lab/allow-added

running() { [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

start() {
  [[ $(id -u) -eq 0 ]] || { echo "bridge-lab: creating a bridge needs root" >&2; exit 1; }
  for bin in ip busybox; do
    command -v "$bin" >/dev/null || { echo "bridge-lab: $bin is missing (apt-get install iproute2 busybox-static)" >&2; exit 1; }
  done
  [[ -x /usr/lib/qemu/qemu-bridge-helper ]] || { echo "bridge-lab: /usr/lib/qemu/qemu-bridge-helper is missing (qemu-system-common)" >&2; exit 1; }
  mkdir -p "$lab"
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add "$bridge" type bridge
    ip addr add "$net.1/24" dev "$bridge"
  fi
  ip link set "$bridge" up
  if [[ ! -d $conf_dir ]]; then
    mkdir -p "$conf_dir"
    touch "$lab/conf-dir-added"
  fi
  if ! grep -qx "$allow" "$conf" 2>/dev/null; then
    echo "$allow" >>"$conf"
    touch "$added_mark"
  fi
  if ! running; then
    touch "$lab/udhcpd.leases"
    cat >"$lab/udhcpd.conf" <<EOF
start $net.100
end $net.199
interface $bridge
lease_file $lab/udhcpd.leases
pidfile $pidfile
opt subnet 255.255.255.0
opt router $net.1
opt lease 3600
EOF
    busybox udhcpd "$lab/udhcpd.conf"
    for _ in $(seq 50); do running && break; sleep 0.1; done
    running || { echo "bridge-lab: udhcpd did not start" >&2; exit 1; }
  fi
  echo "$bridge"
}

stop() {
  if running; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
  fi
  ip link del "$bridge" 2>/dev/null || true
  if [[ -f $added_mark && -f $conf ]]; then
    grep -vx "$allow" "$conf" >"$conf.tmp" || true
    if [[ -s $conf.tmp ]]; then mv "$conf.tmp" "$conf"; else rm -f "$conf.tmp" "$conf"; fi
  fi
  if [[ -f $lab/conf-dir-added ]]; then rmdir "$conf_dir" 2>/dev/null || true; fi
  rm -rf "$lab"
}

status() {
  ip link show "$bridge" >/dev/null 2>&1 && running
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
