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

# go_install DIR MODULE@VERSION...: into DIR, unless DIR is complete already. A half-built DIR is
# never taken for done: binaries land in a temporary directory that is renamed at the end.
go_install() {
  local dir=$1; shift
  local names=() m
  for m in "$@"; do m=${m%@*}; names+=("${m##*/}"); done
  local n ok=1
  for n in "${names[@]}"; do [ -x "$dir/$n" ] || ok=0; done
  ((ok)) && return 0
  echo "build-tailscale: go install $* (first time on this machine: minutes)" >&2
  local tmp
  mkdir -p "$(dirname "$dir")"
  tmp=$(mktemp -d "$dir.building.XXXXXX")
  # No cgo: static binaries that run inside the plugin's minimal rootfs. -trimpath: no build paths.
  CGO_ENABLED=0 GOBIN=$tmp GOFLAGS=-trimpath go install "$@" >&2
  rm -rf "$dir" && mv "$tmp" "$dir"
}

go_install "$cache/tailscale/v$ts_version" "tailscale.com/cmd/tailscale@v$ts_version" "tailscale.com/cmd/tailscaled@v$ts_version"
if [ "${1:-}" = --headscale ]; then
  # headscale is pinned by tools/headscale/go.mod (a tool directive, checked by go.sum): the module
  # proxy refuses headscale's version list, which `go install pkg@version` reads for deprecation
  # notices, so `go install github.com/juanfont/headscale/cmd/headscale@v0.29.2` fails here.
  hs_version=$(awk '$1 == "github.com/juanfont/headscale" {print $2}' tools/headscale/go.mod)
  dir=$cache/headscale/$hs_version
  if [ ! -x "$dir/headscale" ]; then
    echo "build-tailscale: go build headscale $hs_version (first time on this machine: minutes)" >&2
    mkdir -p "$cache/headscale"
    tmp=$(mktemp -d "$dir.building.XXXXXX")
    (cd tools/headscale && CGO_ENABLED=0 go build -trimpath -o "$tmp/headscale" github.com/juanfont/headscale/cmd/headscale) >&2
    rm -rf "$dir" && mv "$tmp" "$dir"
  fi
fi
echo "$cache/tailscale/v$ts_version"
