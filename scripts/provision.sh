#!/usr/bin/env bash
# Installs what the e2e suite needs on a fresh Debian bookworm machine (as root), idempotently:
# Docker 20.10 from bookworm, Docker 28.5 and Compose v2 unpacked from sid (never installed over
# the system), the tools the plugin drives, the busybox root filesystem for the test image, and the
# pinned Tailscale and headscale built with Go.
# TSLINK_CACHE moves the cache (default .cache in the repo); engine.sh reads the same variable.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${TSLINK_CACHE:-$PWD/.cache}
sid=$cache/engines/28.5
mkdir -p "$cache/engines"
# A run that failed halfway leaves only .download.* directories: they are never taken for done.
rm -rf "$cache/engines"/.download.*
export DEBIAN_FRONTEND=noninteractive
apt=(apt-get -q -o DPkg::Lock::Timeout=300) # other sessions may be holding apt's lock
# Where apt keeps its sources, pins and lists: apt-config honours APT_CONFIG, so the provisioning
# test can run this script against throwaway ones without touching the machine's own (apt.conf.d
# is read after APT_CONFIG and overrides it, so such a config must move Dir::Etc::parts too).
eval "$(apt-config shell SOURCE_LIST Dir::Etc::sourcelist/f SOURCE_PARTS Dir::Etc::sourceparts/d PREF_PARTS Dir::Etc::preferencesparts/d LISTS Dir::State::lists/d)"
say() { echo "provision: $*"; }

# known PKG [SUITE]: the package lists offer PKG (from SUITE, when given). `apt-cache show pkg/suite`
# exits 0 even when the suite is missing, so this reads madison's table instead of an exit code.
known() {
  apt-cache madison "$1" 2>/dev/null |
    awk -F'|' -v s="${2:-}" '{ split($3, w, " "); split(w[2], r, "/") } s == "" || r[1] == s { f = 1 } END { exit !f }'
}
lists_updated=0
update_lists() { # update_lists WHY: at most one `apt-get update` per set of sources
  ((lists_updated)) && return 0
  say "apt-get update ($1)"
  "${apt[@]}" update
  lists_updated=1
}

# The system's own packages (engine 20.10, iptables, busybox for the test image, ...).
scripts/host-packages.sh test

# Docker 28.5 from sid, only downloaded and unpacked. sid is pinned at priority 1, so apt never
# takes anything from it unless asked by name (pkg/sid): the system is not upgraded.
if [ ! -x "$sid/usr/sbin/dockerd" ] || [ ! -x "$sid/usr/bin/docker" ] || [ ! -x "$sid/usr/bin/containerd" ] ||
   [ ! -x "$sid/usr/libexec/docker/cli-plugins/docker-compose" ]; then
  say "Docker 28.5 is not unpacked in $sid: fetching it from sid"
  if [ ! -f "$SOURCE_PARTS/tslink-sid.sources" ]; then
    # Same mirror as the system's Debian suites: it is the one this machine can reach.
    uri=$(grep -h '^URIs:' "$SOURCE_PARTS"/*.sources 2>/dev/null | awk '$2 ~ /debian\/?$/ {print $2; exit}')
    [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $2 ~ /debian\/?$/ {print $2; exit}' "$SOURCE_LIST" 2>/dev/null)
    [ -n "$uri" ] || { echo "provision: no Debian mirror configured in apt's sources" >&2; exit 1; }
    say "adding sid ($uri) at pin priority 1"
    printf 'Types: deb\nURIs: %s\nSuites: sid\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$uri" >"$SOURCE_PARTS/tslink-sid.sources"
    mkdir -p "$PREF_PARTS"
    printf 'Package: *\nPin: release n=sid\nPin-Priority: 1\n' >"$PREF_PARTS/tslink-sid"
    lists_updated=0 # a new source: an update made before it did not fetch it
  fi
  if known docker.io sid && known containerd sid && known docker-compose sid; then
    say "the package lists offer sid's docker.io, containerd and docker-compose"
  else
    update_lists "the package lists do not offer sid's docker.io"
    known docker.io sid || { echo "provision: sid's docker.io is not offered even after apt-get update" >&2; exit 1; }
  fi
  # sid splits the client into docker-cli; sid's runc is left out on purpose (needs a newer glibc).
  pkgs=(docker.io/sid containerd/sid docker-compose/sid)
  known docker-cli sid && pkgs+=(docker-cli/sid)
  tmp=$(mktemp -d "$cache/engines/.download.XXXXXX")
  # The sandbox user _apt cannot write into a private cache directory, so root downloads.
  download() { (cd "$tmp" && "${apt[@]}" -o APT::Sandbox::User=root download "${pkgs[@]}"); }
  # apt-get update re-fetches an index only when the new InRelease lists another hash for it, so a
  # sid list gone wrong under an unchanged InRelease would survive it: forget sid's Release first.
  download || { ((lists_updated == 0)) && rm -f "$LISTS"*_dists_sid_*Release* &&
    update_lists "download failed on the current lists" && download; } ||
    { echo "provision: could not download ${pkgs[*]}" >&2; exit 1; }
  for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/root"; done
  rm -rf "$sid" && mv "$tmp/root" "$sid" && rm -rf "$tmp"
else
  say "Docker 28.5 already unpacked in $sid"
fi
# promtool (checks the /metrics text in the e2e suite): only the binary, unpacked from bookworm's
# prometheus package; installing that package would pull in a web UI and a service.
if [ ! -x "$cache/tools/promtool" ]; then
  say "promtool is not unpacked in $cache/tools: fetching bookworm's prometheus package"
  known prometheus bookworm || update_lists "the package lists do not offer bookworm's prometheus"
  tmp=$(mktemp -d "$cache/engines/.download.XXXXXX")
  (cd "$tmp" && "${apt[@]}" -o APT::Sandbox::User=root download prometheus/bookworm) ||
    { echo "provision: could not download prometheus" >&2; exit 1; }
  dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/root"
  mkdir -p "$cache/tools" && mv "$tmp/root/usr/bin/promtool" "$cache/tools/promtool" && rm -rf "$tmp"
else
  say "promtool already unpacked in $cache/tools"
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
# Bumped when what goes into the image changes.
rootfs_version=2
if [ ! -s "$tar" ] || [ /bin/busybox -nt "$tar" ] || [ "$(cat "$tar.version" 2>/dev/null)" != "$rootfs_version" ]; then
  root=$(mktemp -d) && chmod 755 "$root" # it becomes the image's /
  mkdir -p "$root"/{bin,etc,root,tmp,var/www} && chmod 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  # Links for every applet cost nothing and spare tests from guessing which ones exist.
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"; done
  for a in sh ip sleep nc wget cat echo ls ping hostname head grep httpd; do
    [ -e "$root/bin/$a" ] || { echo "provision: busybox lacks $a" >&2; exit 1; }
  done
  # glibc's getent and curl, with their libraries: names resolved as applications resolve them
  # (NSS, resolv.conf), and HTTP as users try it (busybox's static wget crashes).
  for b in /usr/bin/getent /usr/bin/curl; do
    for f in "$b" $(ldd "$b" | grep -o '/[^ ]*'); do mkdir -p "$root$(dirname "$f")" && cp -L "$f" "$root$f"; done
  done
  mkdir -p "$root/lib64" && cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
  echo 'hosts: files dns' >"$root/etc/nsswitch.conf"
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  echo 'root:x:0:' >"$root/etc/group"
  tar --numeric-owner -C "$root" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar" && echo "$rootfs_version" >"$tar.version"
  rm -rf "$root"
fi
# The pinned Tailscale (what the plugin bundles) and headscale (the suite's control server), built
# with Go. The provisioning test runs this script many times over apt scenarios only: it sets
# TSLINK_PROVISION_GO=0.
if [ "${TSLINK_PROVISION_GO:-1}" != 0 ]; then
  start=$SECONDS
  ts=$(scripts/build-tailscale.sh --headscale | tail -n 1)
  say "Tailscale $("$ts/tailscale" version | head -n 1) and headscale in $cache ($((SECONDS - start)) s)"
fi
echo "provision: ok"
