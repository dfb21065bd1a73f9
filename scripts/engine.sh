#!/usr/bin/env bash
# One Docker engine at a time for the e2e suite: `start|restart <20.10|28.5>`, `stop`, `status`,
# `env <version>` (shell exports for the matching client). Each version keeps its own data root.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
base=/var/lib/tslink-e2e
sid=$repo/.cache/engines/28.5
mkdir -p "$base"

engine_path() { # PATH for the engine's binaries; sid's runc needs a newer glibc, so bookworm's runc stays
  case $1 in
    20.10) echo "/usr/sbin:/usr/bin:/sbin:/bin" ;;
    28.5) echo "$sid/usr/bin:$sid/usr/sbin:$sid/usr/libexec/docker:/usr/sbin:/usr/bin:/sbin:/bin" ;;
    *) echo "engine.sh: unknown engine $1 (20.10 or 28.5)" >&2; exit 2 ;;
  esac
}

client() {
  case $1 in 20.10) echo /usr/bin/docker ;; 28.5) echo "$sid/usr/bin/docker" ;; esac
}

stop() {
  local pids
  pids=$(pgrep -x dockerd || true)
  [ -z "$pids" ] && return 0
  kill $pids 2>/dev/null || true
  for _ in $(seq 300); do pgrep -x dockerd >/dev/null || break; sleep 0.1; done
  pkill -9 -x dockerd 2>/dev/null || true
  # A managed containerd outlives a killed dockerd; the next engine must start its own.
  pkill -x containerd 2>/dev/null || true
  sleep 0.5
}

start() {
  local v=$1 log=$base/dockerd-$1.log docker
  stop
  docker=$(client "$v")
  [ -x "$docker" ] || { echo "engine.sh: $v is not provisioned (run scripts/provision.sh)" >&2; exit 1; }
  PATH=$(engine_path "$v") nohup dockerd --data-root "$base/docker-$v" --pidfile "$base/dockerd.pid" >>"$log" 2>&1 &
  for _ in $(seq 600); do
    "$docker" version >/dev/null 2>&1 && break
    sleep 0.1
  done
  if ! "$docker" version >/dev/null 2>&1; then
    echo "engine.sh: dockerd $v did not answer within 60 s; its log ends:" >&2
    tail -30 "$log" >&2
    exit 1
  fi
  if ! "$docker" image inspect tslink-test:busybox >/dev/null 2>&1; then
    "$docker" import "$repo/.cache/busybox-rootfs.tar" tslink-test:busybox >/dev/null
  fi
  echo "engine.sh: Docker $("$docker" version --format '{{.Server.Version}}') running"
}

case ${1:-} in
  start | restart) start "${2:?engine version}" ;;
  stop) stop ;;
  status) pgrep -a -x dockerd || echo "no dockerd" ;;
  env)
    v=${2:?engine version}
    mkdir -p "$repo/.cache/docker-config-$v/cli-plugins"
    [ "$v" = 28.5 ] && ln -sf "$sid/usr/libexec/docker/cli-plugins/docker-compose" "$repo/.cache/docker-config-$v/cli-plugins/docker-compose"
    echo "export DOCKER_BIN=$(client "$v") DOCKER_CONFIG=$repo/.cache/docker-config-$v TSLINK_E2E_ENGINE=$v"
    ;;
  *) echo "usage: engine.sh start|restart <20.10|28.5> | stop | status | env <version>" >&2; exit 2 ;;
esac
