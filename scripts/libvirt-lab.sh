#!/usr/bin/env bash
# Test-only libvirt for winbake-libvirt's end-to-end tests: libvirtd and
# virtlogd run as plain daemons (no systemd), libvirtd on a private unix
# socket, on qemu+tcp 127.0.0.1:16509 with auth none, on qemu+tls
# 127.0.0.1:16514 with certificates from a lab CA, and an sshd on
# 127.0.0.1:16522 that lets a lab key in as root, for qemu+libssh URIs
# (libvirt's ssh transport tunnels to the daemon's unix socket). The tests
# create their own transient storage pools and networks.
#
#   scripts/libvirt-lab.sh start    start (idempotent); prints the URIs
#   scripts/libvirt-lab.sh stop     stop both daemons, remove the lab
#   scripts/libvirt-lab.sh status
#
# Never use this configuration outside tests: anyone on this machine can
# drive libvirtd over the TCP port.
set -euo pipefail

lab=${WINBAKE_LIBVIRT_LAB:-/run/winbake-libvirt}
sock_dir=$lab/sock
conf=$lab/libvirtd.conf
libvirtd_pid=$lab/libvirtd.pid
virtlogd_pid=$lab/virtlogd.pid
tcp_port=16509
ssh_dir=$lab/ssh
pki_dir=$lab/pki
tls_port=16514
sshd_pid=$ssh_dir/sshd.pid
ssh_port=16522

running() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() { # file-or-socket seconds what
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    [[ -e $1 ]] && return 0
    sleep 0.1
  done
  echo "libvirt-lab: $3 did not appear within $2 s ($1)" >&2
  return 1
}

start() {
  if [[ $(id -u) -ne 0 ]]; then
    echo "libvirt-lab: libvirtd's qemu:///system driver needs root" >&2
    exit 1
  fi
  for bin in libvirtd virtlogd; do
    command -v "$bin" >/dev/null || {
      echo "libvirt-lab: $bin missing; install libvirt-daemon-system libvirt-daemon-driver-qemu (scripts/deps.sh)" >&2
      exit 1
    }
  done
  mkdir -p "$sock_dir" /run/libvirt
  if ! running "$virtlogd_pid"; then
    virtlogd -d -p "$virtlogd_pid"
    wait_for /run/libvirt/virtlogd-sock 10 "virtlogd's socket"
  fi
  if ! running "$libvirtd_pid"; then
    make_pki
    cat >"$conf" <<CONF
unix_sock_dir = "$sock_dir"
unix_sock_group = "root"
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
listen_tls = 1
tls_port = "$tls_port"
auth_tls = "none"
ca_file = "$pki_dir/cacert.pem"
cert_file = "$pki_dir/servercert.pem"
key_file = "$pki_dir/serverkey.pem"
listen_tcp = 1
listen_addr = "127.0.0.1"
tcp_port = "$tcp_port"
auth_tcp = "none"
CONF
    libvirtd -d --listen -f "$conf" -p "$libvirtd_pid"
    # The first start probes QEMU's capabilities (~8 s); later ones are fast.
    wait_for "$sock_dir/libvirt-sock" 60 "libvirtd's socket"
  fi
  start_sshd
  echo "qemu:///system?socket=$sock_dir/libvirt-sock"
  echo "qemu+tcp://127.0.0.1/system"
  echo "qemu+tls://127.0.0.1/system?pkipath=$pki_dir"
  echo "qemu+libssh://root@127.0.0.1:$ssh_port/system?socket=$sock_dir/libvirt-sock&keyfile=$ssh_dir/id_ed25519&known_hosts=$ssh_dir/known_hosts"
}

# A lab CA, a server certificate for 127.0.0.1 that libvirtd presents and
# a client certificate, named as libvirt's pkipath expects (cacert.pem,
# clientcert.pem, clientkey.pem). libvirt checks key usage and purpose.
make_pki() {
  [[ -f $pki_dir/clientcert.pem ]] && return 0
  mkdir -p "$pki_dir"
  chmod 700 "$pki_dir"
  local ossl=(openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
  "${ossl[@]}" -x509 -days 7 -subj "/CN=winbake lab CA" -keyout "$pki_dir/cakey.pem" -out "$pki_dir/cacert.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  local who ext
  for who in server client; do
    ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment"
    if [[ $who == server ]]; then
      ext+=$'\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost'
    else
      ext+=$'\nextendedKeyUsage=clientAuth'
    fi
    "${ossl[@]}" -subj "/CN=winbake lab $who" -keyout "$pki_dir/${who}key.pem" -out "$pki_dir/$who.csr" 2>/dev/null
    openssl x509 -req -days 7 -in "$pki_dir/$who.csr" -CA "$pki_dir/cacert.pem" -CAkey "$pki_dir/cakey.pem" \
      -CAcreateserial -extfile <(echo "$ext") -out "$pki_dir/${who}cert.pem" 2>/dev/null
    rm -f "$pki_dir/$who.csr"
  done
}

# sshd on loopback with its own host key, the lab key the only way in, and
# the client's known_hosts written from the host key, so the tests connect
# with host key checking on. The client opens a direct-streamlocal channel
# to libvirtd's socket, which sshd only grants when local forwarding is
# allowed (AllowTcpForwarding local or yes, OpenSSH's default).
start_sshd() {
  running "$sshd_pid" && return 0
  command -v /usr/sbin/sshd >/dev/null || {
    echo "libvirt-lab: sshd missing; install openssh-server (scripts/deps.sh)" >&2
    exit 1
  }
  mkdir -p "$ssh_dir" /run/sshd
  chmod 700 "$ssh_dir"
  [[ -f $ssh_dir/host_ed25519 ]] || ssh-keygen -q -t ed25519 -N "" -C winbake-lab-host -f "$ssh_dir/host_ed25519"
  [[ -f $ssh_dir/id_ed25519 ]] || ssh-keygen -q -t ed25519 -N "" -C winbake-lab-client -f "$ssh_dir/id_ed25519"
  cp "$ssh_dir/id_ed25519.pub" "$ssh_dir/authorized_keys"
  echo "[127.0.0.1]:$ssh_port $(cut -d' ' -f1,2 "$ssh_dir/host_ed25519.pub")" >"$ssh_dir/known_hosts"
  cat >"$ssh_dir/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $ssh_port
HostKey $ssh_dir/host_ed25519
PidFile $sshd_pid
AuthorizedKeysFile $ssh_dir/authorized_keys
AllowUsers root
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowStreamLocalForwarding yes
AllowTcpForwarding local
X11Forwarding no
CONF
  /usr/sbin/sshd -f "$ssh_dir/sshd_config"
  wait_for "$sshd_pid" 10 "sshd's pid file"
}

stop_pid() { # pidfile name
  running "$1" || { rm -f "$1"; return 0; }
  local pid i
  pid=$(cat "$1")
  kill "$pid"
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "libvirt-lab: $2 ($pid) did not stop within 10 s; killing it" >&2
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}

stop() {
  # A test network an interrupted test left: libvirtd leaves a network's
  # bridge and dnsmasq running when it exits, so destroy it first.
  if running "$libvirtd_pid"; then
    virsh -q -c "qemu:///system?socket=$sock_dir/libvirt-sock" net-destroy winbake-e2e-net >/dev/null 2>&1 || true
  fi
  stop_pid "$sshd_pid" sshd
  stop_pid "$libvirtd_pid" libvirtd
  stop_pid "$virtlogd_pid" virtlogd
  rm -rf "$lab"
  # libvirt's own logs of the e2e domains (the tests name them winbake-e2e-*).
  rm -f /var/log/libvirt/qemu/winbake-e2e-*.log /var/log/swtpm/libvirt/qemu/winbake-e2e-*-swtpm.log
}

status() {
  running "$libvirtd_pid" && echo "libvirtd running ($(cat "$libvirtd_pid"))" || echo "libvirtd stopped"
  running "$virtlogd_pid" && echo "virtlogd running ($(cat "$virtlogd_pid"))" || echo "virtlogd stopped"
  running "$sshd_pid" && echo "sshd running ($(cat "$sshd_pid"))" || echo "sshd stopped"
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
