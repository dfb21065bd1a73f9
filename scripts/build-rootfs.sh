#!/usr/bin/env bash
# Assembles the managed plugin's bundle (config.json + rootfs/) from this machine's own Node.js,
# iproute2, iptables and util-linux with their libraries (`make host` installs them first), the
# pinned Tailscale built with Go, and the built app with production dependencies only.
# plugin/Dockerfile is the published build.
#
#   scripts/build-rootfs.sh [--with-test-double] [OUT]     (OUT defaults to plugin/build)
#
# --with-test-double bundles test/double as the "tailscale" binaries: for tests only, and marked
# so inside the rootfs (usr/lib/tslink/tailscale/THIS-IS-A-TEST-DOUBLE).
set -euo pipefail
cd "$(dirname "$0")/.."
double=0
if [ "${1:-}" = --with-test-double ]; then double=1; shift; fi
out=${1:-plugin/build}
root=$out/rootfs
for f in /usr/sbin/ip /usr/sbin/xtables-nft-multi /usr/bin/nsenter /usr/bin/setpriv /usr/bin/flock /usr/bin/unshare; do
  [ -x "$f" ] || { echo "build-rootfs: $f is missing; \`make host\` installs it (iptables, iproute2, util-linux)" >&2; exit 1; }
done
rm -rf "$out" && mkdir -p "$root"

copy_bin() { # copy_bin SRC [DEST]: a binary with every shared library it loads
  local src=$1 dest=${2:-$1}
  mkdir -p "$root$(dirname "$dest")"
  cp -L "$src" "$root$dest"
  for lib in $(ldd "$src" 2>/dev/null | awk '/=>/ {print $3} /^[[:space:]]*\/lib/ {print $1}'); do
    [ -f "$lib" ] || continue
    mkdir -p "$root$(dirname "$lib")"
    [ -f "$root$lib" ] || cp -L "$lib" "$root$lib"
  done
}

for d in bin sbin usr/bin usr/sbin lib lib64 etc tmp run var/run data usr/lib/tslink; do mkdir -p "$root/$d"; done
chmod 1777 "$root/tmp"
copy_bin "$(command -v node)" /usr/local/bin/node
copy_bin /usr/sbin/ip /usr/sbin/ip
copy_bin /usr/sbin/xtables-nft-multi /usr/sbin/xtables-nft-multi
for l in iptables iptables-save iptables-restore; do ln -sf xtables-nft-multi "$root/usr/sbin/$l"; done
mkdir -p "$root/usr/lib/x86_64-linux-gnu"
cp -a /usr/lib/x86_64-linux-gnu/xtables "$root/usr/lib/x86_64-linux-gnu/"
for x in /usr/lib/x86_64-linux-gnu/xtables/*.so; do
  for lib in $(ldd "$x" 2>/dev/null | awk '/=>/ {print $3}'); do
    [ -f "$root$lib" ] || { mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"; }
  done
done
copy_bin /usr/bin/nsenter /usr/bin/nsenter
copy_bin /usr/bin/setpriv /usr/bin/setpriv
copy_bin /usr/bin/flock /usr/bin/flock # the data and state directory locks (src/node/daemon-ownership.ts)
copy_bin /usr/bin/unshare /usr/bin/unshare # a writable /proc/sys for a container's route_localnet (src/host/container-nat.ts)
copy_bin /usr/bin/env /usr/bin/env
copy_bin /bin/sh /bin/sh
# iptables-nft reads these; ip reads its tables from /etc/iproute2 when present.
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
[ -f /etc/ethertypes ] && cp /etc/ethertypes "$root/etc/"
[ -f /etc/protocols ] && cp /etc/protocols "$root/etc/"

app=$root/opt/tslink
mkdir -p "$app"
cp package.json package-lock.json "$app/"
cp -r dist/src "$app/src"
(cd "$app" && npm ci --omit=dev --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null)
rm -f "$app/package-lock.json"
find "$app/src" -name '*.map' -delete

ts=$root/usr/lib/tslink/tailscale
if [ $double = 0 ]; then
  # The pinned Tailscale, built from its Go module (scripts/build-tailscale.sh, cached): what ships
  # is the release the suite tests, never whatever happens to be installed on this machine.
  built=$(scripts/build-tailscale.sh | tail -n 1)
  copy_bin "$built/tailscale" /usr/lib/tslink/tailscale/tailscale
  copy_bin "$built/tailscaled" /usr/lib/tslink/tailscale/tailscaled
fi
if [ $double = 1 ]; then
  mkdir -p "$ts"
  cp test/double/tailscale test/double/tailscaled test/double/*.mjs "$ts/"
  echo "Test double of tailscale/tailscaled from tslink's test/double. Not Tailscale. Never publish this rootfs." \
    >"$ts/THIS-IS-A-TEST-DOUBLE"
fi
cp config.json "$out/config.json"
echo "rootfs: $(du -sh "$root" | cut -f1) in $root"
