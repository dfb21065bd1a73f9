#!/usr/bin/env bash
# Installs what the e2e suite needs on a fresh Debian bookworm machine (as root), idempotently:
# Docker 20.10 from bookworm, Docker 28.5 and Compose v2 unpacked from sid (never installed over
# the system), the tools the plugin drives, and the busybox root filesystem for the test image.
# TSLINK_CACHE moves the cache (default .cache in the repo); engine.sh reads the same variable.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${TSLINK_CACHE:-$PWD/.cache}
sid=$cache/engines/28.5
mkdir -p "$cache/engines"
export DEBIAN_FRONTEND=noninteractive
apt=(apt-get -q -o DPkg::Lock::Timeout=300) # other sessions may be holding apt's lock

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

need=()
for p in docker.io containerd runc busybox-static iptables iproute2 util-linux docker-registry; do
  installed "$p" || need+=("$p")
done
if ((${#need[@]})); then
  echo "provision: installing ${need[*]}"
  # Without systemd, postinst scripts start dockerd and the registry through init.d; engine.sh runs
  # its own engines, so a temporary policy-rc.d vetoes that (an existing one already does).
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  # A fresh machine may have no package lists, or stale ones: refresh only when install fails.
  "${apt[@]}" install -y --no-install-recommends "${need[@]}" ||
    { "${apt[@]}" update && "${apt[@]}" install -y --no-install-recommends "${need[@]}"; }
fi

# Docker 28.5 from sid, only downloaded and unpacked. sid is pinned at priority 1, so apt never
# takes anything from it unless asked by name (pkg/sid): the system is not upgraded.
if [ ! -x "$sid/usr/sbin/dockerd" ] || [ ! -x "$sid/usr/bin/docker" ] || [ ! -x "$sid/usr/bin/containerd" ] ||
   [ ! -x "$sid/usr/libexec/docker/cli-plugins/docker-compose" ]; then
  if [ ! -f /etc/apt/sources.list.d/tslink-sid.sources ]; then
    # Same mirror as bookworm: it is the one this machine can reach.
    uri=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/debian\/?$/{print $2; exit}')
    [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $2 ~ /debian\/?$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
    [ -n "$uri" ] || { echo "provision: no Debian mirror configured in apt's sources" >&2; exit 1; }
    printf 'Types: deb\nURIs: %s\nSuites: sid\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$uri" >/etc/apt/sources.list.d/tslink-sid.sources
    printf 'Package: *\nPin: release n=sid\nPin-Priority: 1\n' >/etc/apt/preferences.d/tslink-sid
  fi
  apt-cache show docker.io/sid >/dev/null 2>&1 || "${apt[@]}" update
  # sid splits the client into docker-cli; sid's runc is left out on purpose (needs a newer glibc).
  pkgs=(docker.io/sid containerd/sid docker-compose/sid)
  apt-cache show docker-cli/sid >/dev/null 2>&1 && pkgs+=(docker-cli/sid)
  tmp=$(mktemp -d "$cache/engines/.download.XXXXXX")
  # The sandbox user _apt cannot write into a private cache directory, so root downloads.
  (cd "$tmp" && "${apt[@]}" -o APT::Sandbox::User=root download "${pkgs[@]}")
  for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/root"; done
  rm -rf "$sid" && mv "$tmp/root" "$sid" && rm -rf "$tmp"
fi
# docker-init links to sid's tini, which is not unpacked; without the dangling link dockerd finds
# bookworm's.
find "$sid" -xtype l -delete
# The unpacked binaries run against bookworm's libraries; the directory name promises 28.5.
v=$("$sid/usr/sbin/dockerd" --version)
echo "provision: sid $v"
[[ $v == "Docker version 28.5."* ]] || { echo "provision: sid no longer ships 28.5; update scripts/*.sh" >&2; exit 1; }
echo "provision: sid client $("$sid/usr/bin/docker" --version)"
echo "provision: sid $("$sid/usr/bin/containerd" --version)"
echo "provision: compose plugin $sid/usr/libexec/docker/cli-plugins/docker-compose ($("$sid/usr/libexec/docker/cli-plugins/docker-compose" version --short))"

# What `engine.sh env` points at: a DOCKER_CONFIG whose cli-plugins hold compose (so the user's
# ~/.docker is left alone), and one directory per engine holding just its `docker` client.
mkdir -p "$cache/docker-config/cli-plugins" "$cache/engines/bin-20.10" "$cache/engines/bin-28.5"
ln -sfn "$sid/usr/libexec/docker/cli-plugins/docker-compose" "$cache/docker-config/cli-plugins/docker-compose"
ln -sfn /usr/bin/docker "$cache/engines/bin-20.10/docker"
ln -sfn "$sid/usr/bin/docker" "$cache/engines/bin-28.5/docker"

# Root filesystem for tslink-test:busybox (no registry is reachable: engine.sh imports this tar).
tar=$cache/busybox-rootfs.tar
if [ ! -s "$tar" ] || [ /bin/busybox -nt "$tar" ]; then
  root=$(mktemp -d) && chmod 755 "$root" # it becomes the image's /
  mkdir -p "$root"/{bin,etc,root,tmp,var/www} && chmod 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  # Links for every applet cost nothing and spare tests from guessing which ones exist.
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"; done
  for a in sh ip sleep nc wget cat echo ls ping hostname head grep httpd; do
    [ -e "$root/bin/$a" ] || { echo "provision: busybox lacks $a" >&2; exit 1; }
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  echo 'root:x:0:' >"$root/etc/group"
  tar --numeric-owner -C "$root" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
  rm -rf "$root"
fi
echo "provision: ok"
