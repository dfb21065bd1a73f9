#!/usr/bin/env bash
# Installs what the e2e suite needs on a fresh Debian bookworm machine (root), idempotently:
# Docker 20.10 from bookworm, Docker 28.5 + Compose v2 unpacked from sid (never installed over
# the system), the tools the plugin drives, and the busybox root filesystem for the test image.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=$PWD/.cache
mkdir -p "$cache"

need=()
for p in docker.io busybox-static iptables iproute2 util-linux docker-registry; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "provision: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# docker.io's postinst may start a system dockerd; the suite runs its own engines.
pkill -x dockerd 2>/dev/null && sleep 2 || true
# The registry package starts a service; our tests start their own on loopback when needed.
systemctl disable --now docker-registry >/dev/null 2>&1 || true

sid=$cache/engines/28.5
if [ ! -x "$sid/usr/sbin/dockerd" ] || [ ! -x "$sid/usr/libexec/docker/cli-plugins/docker-compose" ]; then
  # Reuse the mirror this machine is configured with; sid is pinned so low nothing upgrades.
  uri=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1)
  [ -n "$uri" ] || uri=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)
  printf 'Types: deb\nURIs: %s\nSuites: sid\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" \
    >/etc/apt/sources.list.d/tslink-sid.sources
  printf 'Package: *\nPin: release n=sid\nPin-Priority: 1\n' >/etc/apt/preferences.d/tslink-sid
  apt-get update -qq
  debs=$cache/debs && rm -rf "$debs" && mkdir -p "$debs"
  (cd "$debs" && apt-get download -qq docker.io/sid docker-cli/sid containerd/sid docker-compose/sid 2>/dev/null \
     || apt-get download -qq docker.io/sid containerd/sid docker-compose/sid)
  rm -rf "$sid" && mkdir -p "$sid"
  for d in "$debs"/*.deb; do dpkg-deb -x "$d" "$sid"; done
fi
"$sid/usr/sbin/dockerd" --version

if [ ! -f "$cache/busybox-rootfs.tar" ]; then
  root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/tmp" "$root/etc"
  cp /bin/busybox "$root/bin/busybox"
  for a in sh ip sleep nc wget cat echo ls ping hostname head grep httpd true false kill ps sed; do ln -s busybox "$root/bin/$a"; done
  tar -C "$root" -cf "$cache/busybox-rootfs.tar" .
  rm -rf "$root"
fi
echo "provision: ok"
