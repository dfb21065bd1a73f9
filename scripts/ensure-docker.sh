#!/usr/bin/env bash
# Makes sure a Docker engine answers before `make install`: installs Debian's docker.io when there
# is none, and starts it (systemd when present; otherwise dockerd in the background, as on a
# machine that boots without systemd).
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
[ "$(id -u)" = 0 ] || { echo "tslink: no Docker engine answers, and starting one needs root" >&2; exit 1; }
if ! command -v dockerd >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
if [ -d /run/systemd/system ]; then
  systemctl start docker
else
  # Managed plugins need Docker's mounts to propagate into them; systemd hosts mount / shared.
  [ "$(findmnt -no PROPAGATION /)" = shared ] || mount --make-rshared /
  setsid dockerd >>/var/log/dockerd.log 2>&1 </dev/null &
fi
for _ in $(seq 300); do docker info >/dev/null 2>&1 && exit 0; sleep 0.1; done
echo "tslink: dockerd did not answer within 30 s; see /var/log/dockerd.log" >&2
exit 1
