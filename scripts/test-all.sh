#!/usr/bin/env bash
# The whole suite, as `make test` and CI run it: unit tests, then the e2e suite once per engine.
# Provisions what it needs (packages, engines, test image) and ends with one summary line.
set -uo pipefail
cd "$(dirname "$0")/.."
ENGINES=${TSLINK_ENGINES:-"20.10 28.5"}
results=.cache/test-results
rm -rf "$results" && mkdir -p "$results"
errors=()

stage() { # stage NAME FILE...: node's test runner, one file at a time, with a TAP copy to count from
  local name=$1; shift
  echo "=== $name"
  node --test --test-concurrency=1 \
       --test-reporter=spec --test-reporter-destination=stdout \
       --test-reporter=tap --test-reporter-destination="$results/$name.tap" \
       "$@" || errors+=("$name")
}

# Provisioning comes first: every stage after it may use what it installs (packages, engines,
# the pinned Tailscale and headscale), and none relies on the machine having them already.
if ! scripts/provision.sh; then
  echo "provision failed: nothing else can run"
  echo "0 passed, 1 failed"
  exit 1
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund || { echo "0 passed, 1 failed"; exit 1; }
fi
npm run -s build || { echo "build: 0 passed, 1 failed"; exit 1; }

# A script that ends with its own "N passed, N failed" line (counted below like a TAP summary).
plain_stage() { # plain_stage NAME COMMAND...
  local name=$1; shift
  echo "=== $name"
  "$@" 2>&1 | tee "$results/$name.plain" || errors+=("$name")
}

stage unit dist/test/unit/*.test.js
stage packaging dist/test/packaging/*.test.js
# Attacks on the protocol and a short protocol fuzz, in a private netns, and a short label grammar
# fuzz (2,000 maps, no root needed); make fuzz runs the full ones.
stage attack dist/test/attack/*.test.js
# TSLINK_STAGES=pre-e2e stops here: the fresh-machine stage runs the stages above that way in a
# fresh clone on a machine taken back to its image (and must not run itself again). The
# provisioning stage is not among them: it brings its own throwaway apt configuration and cache,
# so the machine's state does not change what it checks, and running it there twice more cost
# minutes for nothing.
if [ "${TSLINK_STAGES:-all}" != pre-e2e ]; then
  plain_stage provisioning test/provision/provision.test.sh
  plain_stage fresh-machine test/fresh/fresh-machine.test.sh
  for engine in $ENGINES; do
    if ! scripts/engine.sh start "$engine"; then errors+=("engine-$engine"); continue; fi
    eval "$(scripts/engine.sh env "$engine")"
    # CI=true: a missing engine or root fails these tests instead of skipping them.
    CI=true TSLINK_E2E_ENGINE=$engine stage "e2e-$engine" dist/test/e2e/*.test.js
  done
  scripts/engine.sh stop || true
fi

# Counting: a stage passes only if it ran tests and none failed, was cancelled (a failing
# before/after hook cancels or fails the tests under it) or was skipped. Each such problem counts
# as a failure in the closing line, so a suite that did not run cannot look green.
pass=0; fail=0
for tap in "$results"/*.tap; do
  [ -f "$tap" ] || continue
  name=$(basename "$tap" .tap)
  count() { grep -E "^# $1 [0-9]+" "$tap" | tail -1 | awk '{print $3}'; }
  tests=$(count tests) p=$(count pass) f=$(count fail) c=$(count cancelled) s=$(count skipped) t=$(count todo)
  if [ -z "$tests" ]; then errors+=("$name: no summary (the runner died?)"); fail=$((fail + 1)); continue; fi
  pass=$((pass + p)); fail=$((fail + f + c + s + t))
  [ "$tests" -gt 0 ] || { errors+=("$name: ran no tests"); fail=$((fail + 1)); }
  [ "$((c + s + t))" -eq 0 ] || errors+=("$name: $c cancelled, $s skipped, $t todo")
  # A hook that fails outside any test shows only as a failed suite ("not ok" with no test under it).
  hooks=$(grep -cE "failureType: '(hookFailed|cancelledByParent)'" "$tap" || true)
  [ "$hooks" -eq 0 ] || { errors+=("$name: $hooks hook failures"); [ "$f" -gt 0 ] || fail=$((fail + hooks)); }
done
for out in "$results"/*.plain; do
  [ -f "$out" ] || continue
  name=$(basename "$out" .plain)
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -1)
  if [ -z "$line" ]; then errors+=("$name: no summary"); fail=$((fail + 1)); continue; fi
  p=${line%% passed*} f=${line#*, } f=${f%% failed}
  pass=$((pass + p)); fail=$((fail + f))
  [ "$p" -gt 0 ] || { errors+=("$name: ran no tests"); fail=$((fail + 1)); }
done
if [ ${#errors[@]} -gt 0 ]; then
  node scripts/tap-failures.mjs "$results"/*.tap 2>/dev/null || true
  echo "stages with failures: ${errors[*]}"
  [ "$fail" -eq 0 ] && fail=1
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
