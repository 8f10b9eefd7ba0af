#!/usr/bin/env bash
# with-engines.sh COMMAND [ARG...]
#
# Runs COMMAND with real container engines and a real systemd user manager
# next to it, for the runtime tests:
#   - dockerd          on unix://$STATE/docker.sock
#   - podman API       on unix://$STATE/podman.sock (Podman 4.3 needs the
#                      containers.conf settings written below), and a
#                      rootless one run by the user sc-rootless (created
#                      when missing, with subordinate ids)
#   - systemd --user   with its own XDG_RUNTIME_DIR and session bus
#   - the real router, when ../shared/router (or $SITE_CONTROLLER_ROUTER_DIR)
#                      is there: skrouterd installed with its install.sh
#                      when missing, and the router image
#                      quay.io/skupper/skupper-router:3.5.1 built with its
#                      make-image.sh into dockerd and both Podman services
#                      (kept: dockerd's data root and Podman's stores last
#                      from run to run, so a second run imports nothing)
# Installs docker.io, podman and dbus-user-session (and iproute2 and nftables
# for the simulated hosts of internal/hosttest) with apt-get when they are
# missing (run as root). Exports SITE_CONTROLLER_TEST_DOCKER,
# SITE_CONTROLLER_TEST_PODMAN, SITE_CONTROLLER_TEST_PODMAN_ROOTLESS,
# SITE_CONTROLLER_TEST_ROUTER_IMAGE (when the image was built),
# XDG_RUNTIME_DIR, XDG_CONFIG_HOME and DBUS_SESSION_BUS_ADDRESS,
# and stops everything it started, by PID, when COMMAND ends.
#
#   scripts/with-engines.sh make test
#   scripts/with-engines.sh bash        # a shell with the engines up
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARG...]" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$0: needs root (dockerd, podman and the systemd marker)" >&2; exit 2; }

# The engines started here are the only ones in play: a CONTAINER_HOST
# makes `podman system service` a remote client that exits, and any of
# these would point the tests' engine detection elsewhere.
unset CONTAINER_HOST CONTAINER_CONNECTION CONTAINER_SSHKEY CONTAINER_ENDPOINT \
  DOCKER_HOST DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH

missing=()
command -v newuidmap >/dev/null || missing+=(uidmap)
command -v dockerd >/dev/null || missing+=(docker.io)
command -v podman >/dev/null || missing+=(podman)
command -v docker-compose >/dev/null || missing+=(docker-compose)
[ -e /usr/lib/systemd/user/dbus.socket ] || missing+=(dbus-user-session)
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v curl >/dev/null || missing+=(curl)
command -v pgrep >/dev/null || missing+=(procps)
command -v setpriv >/dev/null || missing+=(util-linux)
# simulated hosts (internal/hosttest): network namespaces, veths, bridges, faults
command -v ip >/dev/null || missing+=(iproute2)
command -v nft >/dev/null || missing+=(nftables)
if [ ${#missing[@]} -gt 0 ]; then
  echo "--- installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# the real router beside the project (a test dependency, never part of it)
router_dir=${SITE_CONTROLLER_ROUTER_DIR:-$(cd "$(dirname "$0")/.." && pwd)/../shared/router}
if [ -x "$router_dir/install.sh" ] && [ -x "$router_dir/make-image.sh" ]; then
  command -v skrouterd >/dev/null || { echo "--- installing skupper-router from $router_dir"; "$router_dir/install.sh"; }
else
  echo "--- no router bundle at $router_dir: the real-router tests will skip"
  router_dir=
fi

state=$(mktemp -d /tmp/sc-engines.XXXXXX)
# dockerd's data root outlives the run, so the router image is imported once
docker_root=${SITE_CONTROLLER_DOCKER_ROOT:-/var/lib/site-controller-tests/docker}
mkdir -p "$docker_root"
pids=()
marker_made=
# cleanup stops everything started here, on every way out (COMMAND's end,
# a failed start, a signal): it must not stop half-way, so it runs without
# errexit (a pgrep that finds no child fails, and used to end it before
# dockerd was stopped, which then kept the data root locked).
cleanup() {
  local rc=${1:-$?}
  set +e
  trap - EXIT INT TERM
  # rootless podman runs the service as a child in its user namespace and
  # keeps a pause process holding that namespace: both are ours too
  local started=("${pids[@]}") pid children
  for pid in "${started[@]}"; do
    children=$(pgrep -P "$pid" 2>/dev/null)
    [ -n "$children" ] && pids+=($children)
  done
  [ -n "${rl_run:-}" ] && [ -f "$rl_run/libpod/tmp/pause.pid" ] && pids+=("$(cat "$rl_run/libpod/tmp/pause.pid")")
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  done
  [ -n "$marker_made" ] && rmdir /run/systemd/system 2>/dev/null
  # what dockerd left mounted (its network namespace, overlay layers)
  for d in "$state" "$docker_root"; do
    awk -v s="$d/" 'index($2, s) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  done
  rm -rf "$state" 2>/dev/null
  exit "$rc"
}
trap cleanup EXIT
trap 'cleanup 130' INT
trap 'cleanup 143' TERM

wait_for() { # what, pid, test command...: until the test passes, or pid ends
  local what=$1 pid=$2; shift 2
  for _ in $(seq 300); do
    "$@" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || { echo "$0: $what exited before it came up" >&2; return 1; }
    sleep 0.1
  done
  echo "$0: $what did not come up" >&2
  return 1
}

# a dockerd an earlier run left (killed with SIGKILL, say) holds the kept
# data root: say so rather than fail obscurely
if held=$(pgrep -f -- "--data-root $docker_root( |\$)"); then
  echo "$0: dockerd $held (left by an earlier run?) still uses $docker_root: stop it (kill $held) first" >&2
  exit 1
fi

echo "--- starting dockerd"
dockerd --host "unix://$state/docker.sock" --pidfile "$state/docker.pid" \
  --data-root "$docker_root" --exec-root "$state/docker-exec" \
  --iptables=false --bridge=none >"$state/dockerd.log" 2>&1 &
pids+=($!)
wait_for dockerd "$!" curl -sf --unix-socket "$state/docker.sock" http://d/_ping || { tail -20 "$state/dockerd.log"; exit 1; }

echo "--- starting the podman API service"
cat >"$state/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
export CONTAINERS_CONF="$state/containers.conf"
podman system service --time=0 "unix://$state/podman.sock" >"$state/podman.log" 2>&1 &
pids+=($!)
wait_for podman "$!" curl -sf --unix-socket "$state/podman.sock" http://d/_ping || { tail -20 "$state/podman.log"; exit 1; }

# the rootless path (keep-id) needs a real unprivileged user with
# subordinate ids; setpriv execs podman directly, so its PID is ours to end
ROOTLESS_USER=sc-rootless
echo "--- starting a rootless podman API service (user $ROOTLESS_USER)"
id "$ROOTLESS_USER" >/dev/null 2>&1 || useradd --create-home --shell /usr/sbin/nologin "$ROOTLESS_USER"
grep -q "^$ROOTLESS_USER:" /etc/subuid || echo "$ROOTLESS_USER:300000:65536" >>/etc/subuid
grep -q "^$ROOTLESS_USER:" /etc/subgid || echo "$ROOTLESS_USER:300000:65536" >>/etc/subgid
rl_uid=$(id -u "$ROOTLESS_USER"); rl_gid=$(id -g "$ROOTLESS_USER")
rl="$state/rootless"
mkdir -p "$rl" && chown "$rl_uid:$rl_gid" "$rl"
chmod 0755 "$state"
cp "$CONTAINERS_CONF" "$rl/containers.conf" && chmod 0644 "$rl/containers.conf"
rl_home=$(getent passwd "$ROOTLESS_USER" | cut -d: -f6)
# a runtime directory that stays the same from run to run: Podman records
# it in its database and insists on it afterwards
rl_run="$rl_home/.sc-runtime"
install -d -m 0700 -o "$rl_uid" -g "$rl_gid" "$rl_run"
env -i HOME="$rl_home" PATH="$PATH" XDG_RUNTIME_DIR="$rl_run" CONTAINERS_CONF="$rl/containers.conf" \
  setpriv --reuid="$rl_uid" --regid="$rl_gid" --init-groups \
  podman system service --time=0 "unix://$rl/podman.sock" >"$state/podman-rootless.log" 2>&1 &
pids+=($!)
wait_for "rootless podman" "$!" curl -sf --unix-socket "$rl/podman.sock" http://d/_ping || { tail -20 "$state/podman-rootless.log"; exit 1; }

echo "--- starting a systemd user manager"
# systemd --user runs as a real manager only when it believes systemd is
# PID 1; the marker is removed right after so other tools do not believe so.
if [ ! -d /run/systemd/system ]; then mkdir -p /run/systemd/system; marker_made=1; fi
export XDG_RUNTIME_DIR="$state/xdg"
export XDG_CONFIG_HOME="$state/config"   # the manager's user unit directory lives here
mkdir -m 0700 "$XDG_RUNTIME_DIR"
mkdir -p "$XDG_CONFIG_HOME/systemd/user"
systemd --user >"$state/systemd.log" 2>&1 &
pids+=($!)
export DBUS_SESSION_BUS_ADDRESS="unix:path=$XDG_RUNTIME_DIR/bus"
wait_for "systemd --user" "$!" systemctl --user show-environment || { tail -20 "$state/systemd.log"; exit 1; }
if [ -n "$marker_made" ]; then rmdir /run/systemd/system; marker_made=; fi

export SITE_CONTROLLER_TEST_DOCKER="unix://$state/docker.sock"
export SITE_CONTROLLER_TEST_PODMAN="unix://$state/podman.sock"
export SITE_CONTROLLER_TEST_PODMAN_ROOTLESS="unix://$rl/podman.sock"

# containers a killed earlier run left in the kept docker root: all ours
left=$(docker -H "$SITE_CONTROLLER_TEST_DOCKER" ps -aq)
[ -z "$left" ] || docker -H "$SITE_CONTROLLER_TEST_DOCKER" rm -f $left >/dev/null 2>&1 || true

if [ -n "$router_dir" ]; then
  image=quay.io/skupper/skupper-router:3.5.1
  bundle=$(cat /opt/skupper-router/VERSION 2>/dev/null || echo none)
  t0=$SECONDS
  for ep in docker:"$SITE_CONTROLLER_TEST_DOCKER" podman:"$SITE_CONTROLLER_TEST_PODMAN" podman:"$SITE_CONTROLLER_TEST_PODMAN_ROOTLESS"; do
    engine=${ep%%:*} url=${ep#*:}
    flag=-H; [ "$engine" = podman ] && flag=--url
    have=$($engine $flag "$url" image inspect -f '{{index .Config.Labels "io.skupper.router.bundle"}}' "$image" 2>/dev/null || true)
    if [ "$have" = "$bundle" ]; then
      echo "--- router image $image (bundle $bundle) already in $engine $url"
    else
      echo "--- building the router image into $engine $url"
      "$router_dir/make-image.sh" "$engine" "$url" || { echo "$0: building the router image failed" >&2; exit 1; }
    fi
  done
  echo "--- router set-up took $((SECONDS - t0)) s"
  export SITE_CONTROLLER_TEST_ROUTER_IMAGE=$image
fi
export SITE_CONTROLLER_TEST_ROOTLESS_OWNER="$rl_uid:$rl_gid"
echo "--- engines up: docker $SITE_CONTROLLER_TEST_DOCKER, podman $SITE_CONTROLLER_TEST_PODMAN, systemd --user on $DBUS_SESSION_BUS_ADDRESS"
set +e
"$@"
