#!/usr/bin/env bash
# Runs tslink from this working tree as a legacy plugin (the daemon finds it by its socket) and
# creates a demo network. For a managed plugin use `make install`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "tslink: run as root (it manages host networking)" >&2; exit 1; }
docker version >/dev/null 2>&1 || { echo "tslink: no Docker engine answers; start dockerd first" >&2; exit 1; }

pidfile=/run/tslink-legacy.pid
log=/var/log/tslink.log
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  kill "$(cat "$pidfile")"; sleep 1
fi
# TS_AUTHKEY (if set) stays in this process's environment only: it is never written to disk.
nohup env TS_DATA_DIR="${TS_DATA_DIR:-/var/lib/docker-plugins/tailscale}" LOG_LEVEL="${LOG_LEVEL:-info}" \
  ${TS_PATH:+TS_PATH="$TS_PATH"} node dist/src/cli.js serve >>"$log" 2>&1 &
echo $! >"$pidfile"
for _ in $(seq 100); do [ -S /run/docker/plugins/tslink.sock ] && break; sleep 0.1; done
[ -S /run/docker/plugins/tslink.sock ] || { echo "tslink: the plugin did not start; see $log" >&2; tail -20 "$log" >&2; exit 1; }
echo "tslink serving /run/docker/plugins/tslink.sock (log: $log, pid $(cat "$pidfile"))"

net=${TSLINK_NETWORK:-tsnet}
if ! docker network inspect "$net" >/dev/null 2>&1; then
  docker network create -d tslink "$net"
fi
echo "network $net ready: docker run --network $net --label tslink.hostname=web ..."
