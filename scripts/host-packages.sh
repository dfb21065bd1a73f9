#!/usr/bin/env bash
# Installs Debian packages this project builds from or tests with, before anything uses them, and
# says in one line what it installs. Idempotent: installed packages are left alone.
#
#   scripts/host-packages.sh install   what `make install` needs: iptables, iproute2, util-linux,
#                                      procps and a Docker engine (docker.io, containerd, runc)
#   scripts/host-packages.sh test      the above plus what the test suite needs (busybox-static,
#                                      docker-registry, curl for the test image)
#
# Where it cannot install (not Debian, not root, no apt-get) it exits 1 naming what is missing.
# APT_CONFIG is honoured (the provisioning test runs against throwaway apt configurations).
set -euo pipefail
install_pkgs=(iptables iproute2 util-linux procps docker.io containerd runc)
case ${1:-} in
  install) pkgs=("${install_pkgs[@]}") ;;
  test) pkgs=("${install_pkgs[@]}" busybox-static docker-registry curl) ;;
  *) echo "usage: $0 install|test" >&2; exit 2 ;;
esac
say() { echo "tslink: $*"; }

# A package counts as present only when dpkg says it is installed; off Debian, the commands the
# project runs stand for the packages that ship them.
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
command_of() {
  case $1 in
    iptables) echo iptables ;; iproute2) echo ip ;; util-linux) echo nsenter ;; procps) echo pgrep ;;
    docker.io) echo dockerd ;; containerd) echo containerd ;; runc) echo runc ;;
    busybox-static) echo busybox ;; docker-registry) echo docker-registry ;; curl) echo curl ;;
  esac
}

need=()
if command -v dpkg-query >/dev/null; then
  for p in "${pkgs[@]}"; do installed "$p" || need+=("$p"); done
else
  for p in "${pkgs[@]}"; do command -v "$(command_of "$p")" >/dev/null || need+=("$p"); done
fi
if ((${#need[@]} == 0)); then
  say "host packages: all installed (${pkgs[*]})"
  exit 0
fi

cannot() {
  echo "tslink: cannot install what this needs ($1). Missing: ${need[*]}." >&2
  echo "tslink: install these (Debian package names) and run the command again." >&2
  exit 1
}
[ -f /etc/debian_version ] && command -v apt-get >/dev/null || cannot "not a Debian machine"
[ "$(id -u)" = 0 ] || cannot "not root"

say "installing from Debian: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt=(apt-get -q -o DPkg::Lock::Timeout=300) # another apt may be holding the lock
# Without systemd, postinst scripts start dockerd and the registry through init.d; tslink starts
# the engines it needs itself, so a temporary policy-rc.d vetoes that (an existing one already does).
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
# known PKG: the package lists offer it (a brand-new machine has no lists at all).
known() { apt-cache madison "$1" 2>/dev/null | grep -q .; }
updated=0
for p in "${need[@]}"; do
  known "$p" || { "${apt[@]}" update >/dev/null; updated=1; break; }
done
# Lists that offer every package can still be stale (their files gone from the mirror): one
# update and one retry.
"${apt[@]}" install -y --no-install-recommends "${need[@]}" >/dev/null ||
  { ((updated == 0)) && "${apt[@]}" update >/dev/null && "${apt[@]}" install -y --no-install-recommends "${need[@]}" >/dev/null; } ||
  { echo "tslink: apt-get install ${need[*]} failed" >&2; exit 1; }
say "installed: ${need[*]}"
