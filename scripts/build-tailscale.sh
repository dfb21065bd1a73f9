#!/usr/bin/env bash
# Builds the real Tailscale that tslink bundles (and, with --headscale, the control server the
# test suite runs) from the Go module proxy, at pinned versions, once per cache:
#
#   scripts/build-tailscale.sh [--headscale]
#
# Prints the directory holding tailscale and tailscaled on its last line.
# The Tailscale version is SUPPORTED_TAILSCALE in src/config/tailscale-features.ts: what ships is
# what the suite tests. TSLINK_CACHE moves the cache (default .cache in the repo).
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${TSLINK_CACHE:-$PWD/.cache}
ts_version=$(sed -n "s/^export const SUPPORTED_TAILSCALE = '\([0-9.]*\)';$/\1/p" src/config/tailscale-features.ts)
[ -n "$ts_version" ] || { echo "build-tailscale: no SUPPORTED_TAILSCALE in src/config/tailscale-features.ts" >&2; exit 1; }
command -v go >/dev/null || { echo "build-tailscale: Go is missing (this needs Go 1.26 and the Go module proxy)" >&2; exit 1; }

# build_into DIR BUILDER NAME...: unless DIR already holds every NAME, runs `BUILDER TMP` and
# renames TMP to DIR once it succeeded, so a half-built DIR is never taken for done.
build_into() {
  local dir=$1 builder=$2 ok=1 n tmp; shift 2
  for n in "$@"; do [ -x "$dir/$n" ] || ok=0; done
  ((ok)) && return 0
  echo "build-tailscale: $builder into $dir (first time on this machine: minutes)" >&2
  mkdir -p "$(dirname "$dir")"
  tmp=$(mktemp -d "$dir.building.XXXXXX")
  "$builder" "$tmp" >&2
  rm -rf "$dir" && mv "$tmp" "$dir"
}

# No cgo: static binaries that run inside the plugin's minimal rootfs. -trimpath: no build paths.
tailscale_build() {
  CGO_ENABLED=0 GOBIN=$1 GOFLAGS=-trimpath go install "tailscale.com/cmd/tailscale@v$ts_version" "tailscale.com/cmd/tailscaled@v$ts_version"
}
# headscale is pinned by tools/headscale/go.mod (a tool directive, checked by go.sum): the module
# proxy refuses headscale's version list, which `go install pkg@version` reads for deprecation
# notices, so `go install github.com/juanfont/headscale/cmd/headscale@v0.29.2` fails here.
headscale_build() {
  (cd tools/headscale && CGO_ENABLED=0 go build -trimpath -o "$1/headscale" github.com/juanfont/headscale/cmd/headscale)
}

build_into "$cache/tailscale/v$ts_version" tailscale_build tailscale tailscaled
if [ "${1:-}" = --headscale ]; then
  build_into "$cache/headscale/$(awk '$1 == "github.com/juanfont/headscale" {print $2}' tools/headscale/go.mod)" headscale_build headscale
fi
echo "$cache/tailscale/v$ts_version"
