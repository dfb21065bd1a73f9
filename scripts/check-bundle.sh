#!/usr/bin/env bash
# Refuses a plugin bundle that carries tslink's Tailscale test double: such a bundle must never be
# pushed or published. Checks the marker file build-rootfs.sh writes and, in case it was removed,
# the double's own mark inside any bundled tailscale file.
#   scripts/check-bundle.sh BUNDLE_DIR
set -euo pipefail
bundle=${1:?usage: check-bundle.sh BUNDLE_DIR}
ts=$bundle/rootfs/usr/lib/tslink/tailscale
[ -d "$bundle/rootfs" ] || { echo "check-bundle: $bundle has no rootfs/" >&2; exit 2; }
if [ -e "$ts/THIS-IS-A-TEST-DOUBLE" ] || { [ -d "$ts" ] && grep -rlq 'TEST DOUBLE of' "$ts"; }; then
  echo "check-bundle: $bundle bundles tslink's Tailscale TEST DOUBLE; refusing (rebuild with 'make rootfs' and no TEST_DOUBLE)" >&2
  exit 1
fi
echo "check-bundle: $bundle carries no test double"
