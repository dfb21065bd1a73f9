#!/usr/bin/env bash
# One Docker engine at a time for the e2e suite, always on /var/run/docker.sock:
#   engine.sh start|restart <20.10|28.5>   stop any dockerd, start this one, import the test image
#                                          (TSLINK_DOCKERD_FLAGS: extra dockerd flags, e.g. --live-restore)
#   engine.sh stop | status
#   engine.sh env <20.10|28.5>              shell exports for tests: eval "$(scripts/engine.sh env 28.5)"
# Each version keeps its own data root and log under /var/lib/tslink-e2e. Needs scripts/provision.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${TSLINK_CACHE:-$PWD/.cache}
sid=$cache/engines/28.5
base=/var/lib/tslink-e2e
image=tslink-test:busybox
# Whatever the caller's environment points at, this script manages the default socket only.
export DOCKER_HOST=unix:///var/run/docker.sock
unset DOCKER_CONTEXT

die() { echo "engine.sh: $*" >&2; exit 1; }

# shellcheck source=engine-lib.sh
source scripts/engine-lib.sh

stop() {
  # A systemd-managed docker would be restarted (or socket-activated) behind our back, and a
  # running system containerd would be picked up instead of the engine's own.
  if [ -d /run/systemd/system ]; then
    systemctl stop docker.socket docker.service containerd.service 2>/dev/null || true
  fi
  # Any dockerd counts, a system one included: they would all fight over the same socket.
  local containerd
  containerd=$(cat /var/run/docker/containerd/containerd.pid 2>/dev/null || true)
  terminate "$(pgrep -x dockerd | tr '\n' ' ' || true)" 30
  # dockerd stops the containerd it started, unless dockerd had to be killed.
  # (The pid file outlives it, so check the pid still names a containerd.)
  if [ "$(cat "/proc/${containerd:-none}/comm" 2>/dev/null)" = containerd ]; then terminate "$containerd" 10; fi
  return 0
}

start() {
  local v=$1 log=$base/dockerd-$1.log docker pid deadline sum from
  check_version "$v"
  docker=$(client "$v")
  stop
  mkdir -p "$base"
  # systemd hosts mount / shared; this VM boots without systemd. Managed plugins depend on it:
  # namespaces Docker creates under its exec root must propagate into the plugin's mounts.
  [ "$(findmnt -no PROPAGATION /)" = shared ] || mount --make-rshared /
  echo "=== engine.sh start $v $(date -Is)" >>"$log"
  from=$(stat -c %s "$log") # on failure, show this start's part of the log only
  # setsid: the engine must outlive the caller's process group (test runners kill theirs);
  # 9>&- keeps it from inheriting the lock below.
  # TSLINK_DOCKERD_FLAGS adds daemon flags for one start (e.g. --live-restore).
  # shellcheck disable=SC2086
  PATH=$(engine_path "$v") setsid "$(dockerd_bin "$v")" --data-root "$base/docker-$v" ${TSLINK_DOCKERD_FLAGS:-} \
    </dev/null >>"$log" 2>&1 9>&- &
  pid=$!
  deadline=$((SECONDS + 60))
  until "$docker" version >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "engine.sh: dockerd $v exited at start; $log says:" >&2
    elif ((SECONDS >= deadline)); then
      echo "engine.sh: dockerd $v did not answer within 60 s; $log says:" >&2
      terminate "$pid" 10
    else
      sleep 0.2
      continue
    fi
    tail -c +$((from + 1)) "$log" | tail -n 30 >&2
    stop
    exit 1
  done
  # The import message records which tar the image came from, so a rebuilt tar is re-imported.
  sum="rootfs sha256:$(sha256sum <"$cache/busybox-rootfs.tar" | cut -c1-64)"
  if [ "$("$docker" image inspect -f '{{.Comment}}' "$image" 2>/dev/null || true)" != "$sum" ]; then
    "$docker" import -c 'CMD ["/bin/sh"]' -m "$sum" "$cache/busybox-rootfs.tar" "$image" >/dev/null
  fi
  echo "engine.sh: Docker $("$docker" version -f '{{.Server.Version}}') running (pid $pid, log $log)"
}

status() {
  local pids p docker
  pids=$(pgrep -x dockerd || true)
  [ -n "$pids" ] || { echo "engine.sh: no dockerd running"; return 3; }
  for p in $pids; do echo "engine.sh: dockerd pid $p: $(readlink "/proc/$p/exe") $(tr '\0' ' ' <"/proc/$p/cmdline")"; done
  docker=$(command -v docker || echo /usr/bin/docker)
  echo "engine.sh: server $("$docker" version -f '{{.Server.Version}}' 2>/dev/null || echo 'not answering')"
}

env_exports() {
  local v=$1 path= p parts
  check_version "$v"
  # Drop engine directories left by an earlier eval, so switching engines in one shell works.
  IFS=: read -ra parts <<<"$PATH"
  for p in "${parts[@]}"; do [[ $p == "$cache/engines/bin-"* ]] || path+=:$p; done
  printf 'export %s=%q\n' \
    DOCKER_BIN "$(client "$v")" \
    PATH "$cache/engines/bin-$v$path" \
    DOCKER_CONFIG "$cache/docker-config" \
    DOCKER_HOST "$DOCKER_HOST" \
    TSLINK_E2E_ENGINE "$v"
}

case ${1:-} in
  start | restart | stop)
    mkdir -p "$base"
    # Two callers switching engines at once would each stop the other's dockerd.
    exec 9>"$base/engine.lock"
    flock 9
    if [ "$1" = stop ]; then stop; else start "${2:?engine version}"; fi
    ;;
  status) status ;;
  env) env_exports "${2:?engine version}" ;;
  *) echo "usage: engine.sh start|restart <20.10|28.5> | stop | status | env <20.10|28.5>" >&2; exit 2 ;;
esac
