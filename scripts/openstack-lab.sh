#!/usr/bin/env bash
# A real Keystone and glance-api on loopback for the winbake-glance tests.
#
#   scripts/openstack-lab.sh start [STATE_DIR]   start (or reuse) the services
#   scripts/openstack-lab.sh stop  [STATE_DIR]   stop them, nothing left running
#   scripts/openstack-lab.sh status [STATE_DIR]  exit 0 when both answer
#
# STATE_DIR defaults to build/openstack-lab. Everything lives in it: sqlite
# databases, fernet keys, the file store, logs, and for the tests
#   clouds.yaml  cloud "winbake-test" (user packer, project images) and
#                "winbake-admin" (admin/admin)
#   openrc       the same packer user as OS_* variables, as the openstack CLI
#                expects them
# Installs nothing: the Debian packages come from scripts/deps.sh.
#
# Environment: OPENSTACK_LAB_KEYSTONE_PORT (15000), OPENSTACK_LAB_GLANCE_PORT
# (19292), OPENSTACK_LAB_IMAGE_SIZE_CAP (bytes, 67108864 = 64 MiB, so tests
# can provoke a 413 with a small upload).
#
# start is idempotent: services that already answer from STATE_DIR are
# reused; a half-started state is stopped and started again.
set -euo pipefail

cmd=${1:-}
root=$(cd "$(dirname "$0")/.." && pwd)
state=${2:-$root/build/openstack-lab}
keystone_port=${OPENSTACK_LAB_KEYSTONE_PORT:-15000}
glance_port=${OPENSTACK_LAB_GLANCE_PORT:-19292}
size_cap=${OPENSTACK_LAB_IMAGE_SIZE_CAP:-67108864}
admin_password=adminpass
glance_password=glancepass
packer_password=packerpass
# The Debian entry points are Python 3 scripts; a pyenv/venv python3 first on
# PATH must not be the one that imports the OpenStack modules.
py=/usr/bin/python3

log() { echo "openstack-lab: $*" >&2; }

need() {
  local missing=()
  for c in keystone-manage keystone-wsgi-public glance-manage glance-api openstack curl; do
    command -v "$c" >/dev/null || missing+=("$c")
  done
  if ((${#missing[@]})); then
    log "missing commands: ${missing[*]}; run 'make deps' (glance-api glance-common python3-glance python3-keystone python3-openstackclient)"
    exit 1
  fi
  [[ -f /etc/glance/glance-api-paste.ini ]] || { log "/etc/glance/glance-api-paste.ini missing; reinstall glance-api"; exit 1; }
}

# http_code URL: the HTTP status of a GET, 000 when nothing answers.
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1" || true; }

alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

keystone_up() { alive "$state/keystone.pid" && [[ $(http_code "http://127.0.0.1:$keystone_port/v3") == 200 ]]; }
glance_up() { alive "$state/glance-api.pid" && [[ $(http_code "http://127.0.0.1:$glance_port/") == 300 ]]; }

# wait_for NAME PIDFILE CHECK...: poll until CHECK succeeds, fail when the
# process died or 120 s passed.
wait_for() {
  local name=$1 pidfile=$2; shift 2
  for _ in $(seq 1 240); do
    "$@" && return 0
    if ! alive "$pidfile"; then
      log "$name exited during start-up; its log:"
      tail -n 30 "$state/$name.stdout.log" >&2 || true
      return 1
    fi
    sleep 0.5
  done
  log "$name did not answer within 120 s"
  return 1
}

# stop_pid PIDFILE: TERM, then KILL after 10 s; only the recorded process.
stop_pid() {
  local pidfile=$1 pid
  [[ -f $pidfile ]] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

write_configs() {
  mkdir -p "$state"/etc "$state"/log "$state"/lock \
    "$state"/data/images "$state"/data/staging "$state"/data/tasks "$state"/data/image-cache \
    "$state"/keystone/fernet-keys "$state"/keystone/credential-keys "$state"/keystone/log
  cat >"$state/keystone/keystone.conf" <<EOF
[DEFAULT]
log_file = $state/keystone/log/keystone.log
[database]
connection = sqlite:///$state/keystone/keystone.sqlite
[token]
provider = fernet
expiration = 3600
[fernet_tokens]
key_repository = $state/keystone/fernet-keys
[fernet_receipts]
key_repository = $state/keystone/fernet-keys
[credential]
key_repository = $state/keystone/credential-keys
[catalog]
# Read-only catalog from a file: endpoints written through the API fail with
# sqlite's "database is locked".
driver = templated
template_file = $state/keystone/default_catalog.templates
EOF
  local ks="http://127.0.0.1:$keystone_port/v3" gl="http://127.0.0.1:$glance_port" i
  : >"$state/keystone/default_catalog.templates"
  for i in public internal admin; do
    {
      echo "catalog.RegionOne.identity.${i}URL = $ks"
      echo "catalog.RegionOne.image.${i}URL = $gl"
    } >>"$state/keystone/default_catalog.templates"
  done
  echo "catalog.RegionOne.identity.name = Identity Service" >>"$state/keystone/default_catalog.templates"
  echo "catalog.RegionOne.image.name = Image Service" >>"$state/keystone/default_catalog.templates"

  cat >"$state/etc/glance-api.conf" <<EOF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $glance_port
# one process, one PID to stop
workers = 0
debug = false
use_stderr = false
log_file = $state/log/glance-api.log
enabled_backends = fs:file
image_cache_dir = $state/data/image-cache
enabled_import_methods = [glance-direct,web-download,copy-image]
image_size_cap = $size_cap

[database]
connection = sqlite:///$state/data/glance.sqlite

[paste_deploy]
flavor = keystone
config_file = $state/etc/glance-api-paste.ini

[glance_store]
default_backend = fs

[fs]
filesystem_store_datadir = $state/data/images/

[os_glance_staging_store]
filesystem_store_datadir = $state/data/staging/

[os_glance_tasks_store]
filesystem_store_datadir = $state/data/tasks/

[oslo_concurrency]
lock_path = $state/lock

[oslo_policy]
enforce_new_defaults = false
enforce_scope = false

[keystone_authtoken]
www_authenticate_uri = http://127.0.0.1:$keystone_port
auth_url = http://127.0.0.1:$keystone_port
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = glance
password = $glance_password
service_token_roles_required = true
EOF
  cp /etc/glance/glance-api-paste.ini "$state/etc/glance-api-paste.ini"

  cat >"$state/clouds.yaml" <<EOF
clouds:
  winbake-test:
    auth:
      auth_url: "http://127.0.0.1:$keystone_port/v3"
      username: packer
      password: $packer_password
      project_name: images
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
  winbake-admin:
    auth:
      auth_url: "http://127.0.0.1:$keystone_port/v3"
      username: admin
      password: $admin_password
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
EOF
  cat >"$state/openrc" <<EOF
export OS_AUTH_URL=http://127.0.0.1:$keystone_port/v3
export OS_IDENTITY_API_VERSION=3
export OS_REGION_NAME=RegionOne
export OS_INTERFACE=public
export OS_USERNAME=packer
export OS_PASSWORD=$packer_password
export OS_PROJECT_NAME=images
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
EOF
  cat >"$state/lab.env" <<EOF
KEYSTONE_URL=http://127.0.0.1:$keystone_port/v3
GLANCE_URL=http://127.0.0.1:$glance_port
IMAGE_SIZE_CAP=$size_cap
EOF
}

start_keystone() {
  local km=(keystone-manage --config-file "$state/keystone/keystone.conf")
  if [[ ! -f $state/keystone/bootstrapped ]]; then
    # keystone-manage may print harmless eventlet tracebacks at exit; the
    # exit status is what counts.
    "${km[@]}" db_sync >>"$state/keystone.stdout.log" 2>&1
    "${km[@]}" fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" >>"$state/keystone.stdout.log" 2>&1
    "${km[@]}" credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" >>"$state/keystone.stdout.log" 2>&1
    # No --bootstrap-*-url: the templated catalog is read-only.
    "${km[@]}" bootstrap --bootstrap-password "$admin_password" >>"$state/keystone.stdout.log" 2>&1
  fi
  port_free "$keystone_port" || { log "port $keystone_port is in use by another process"; return 1; }
  OS_KEYSTONE_CONFIG_FILES="$state/keystone/keystone.conf" setsid "$py" "$(command -v keystone-wsgi-public)" \
    --host 127.0.0.1 --port "$keystone_port" >>"$state/keystone.stdout.log" 2>&1 </dev/null &
  echo $! >"$state/keystone.pid"
  wait_for keystone "$state/keystone.pid" keystone_up
}

# Users, projects and roles (not services/endpoints: the catalog is a file).
bootstrap_identity() {
  [[ -f $state/keystone/users-created ]] && return 0
  local os=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$state" OS_CLOUD=winbake-admin
    OS_CLIENT_CONFIG_FILE="$state/clouds.yaml" openstack)
  "${os[@]}" project create --or-show service >/dev/null
  "${os[@]}" user create --or-show --password "$glance_password" glance >/dev/null
  "${os[@]}" role add --project service --user glance admin
  "${os[@]}" project create --or-show images >/dev/null
  "${os[@]}" user create --or-show --password "$packer_password" packer >/dev/null
  "${os[@]}" role add --project images --user packer member
  touch "$state/keystone/users-created"
}

start_glance() {
  if [[ ! -f $state/data/glance-db-synced ]]; then
    glance-manage --config-file "$state/etc/glance-api.conf" db_sync >>"$state/glance-api.stdout.log" 2>&1
    touch "$state/data/glance-db-synced"
  fi
  port_free "$glance_port" || { log "port $glance_port is in use by another process"; return 1; }
  setsid "$py" "$(command -v glance-api)" --config-file "$state/etc/glance-api.conf" \
    >>"$state/glance-api.stdout.log" 2>&1 </dev/null &
  echo $! >"$state/glance-api.pid"
  wait_for glance-api "$state/glance-api.pid" glance_up
}

case $cmd in
start)
  need
  mkdir -p "$state"
  state=$(cd "$state" && pwd)
  if keystone_up && glance_up && [[ -f $state/keystone/users-created ]]; then
    log "already running in $state"
    exit 0
  fi
  # Half-started: stop what is there and start again from the files.
  stop_pid "$state/glance-api.pid"
  stop_pid "$state/keystone.pid"
  started=$(date +%s)
  write_configs
  if ! { start_keystone && bootstrap_identity && start_glance; }; then
    stop_pid "$state/glance-api.pid"
    stop_pid "$state/keystone.pid"
    log "start failed; logs in $state"
    exit 1
  fi
  log "Keystone http://127.0.0.1:$keystone_port/v3 and glance-api http://127.0.0.1:$glance_port up in $(($(date +%s) - started)) s (state $state)"
  ;;
stop)
  [[ -d $state ]] || exit 0
  state=$(cd "$state" && pwd)
  stop_pid "$state/glance-api.pid"
  stop_pid "$state/keystone.pid"
  log "stopped (state kept in $state; remove it to start from scratch)"
  ;;
status)
  [[ -d $state ]] || exit 1
  state=$(cd "$state" && pwd)
  keystone_up && glance_up
  ;;
*)
  echo "usage: $0 start|stop|status [STATE_DIR]" >&2
  exit 2
  ;;
esac
