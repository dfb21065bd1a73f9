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

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund || { echo "0 passed, 1 failed"; exit 1; }
fi
npm run -s build || { echo "build: 0 passed, 1 failed"; exit 1; }

stage unit dist/test/unit/*.test.js

if scripts/provision.sh; then
  for engine in $ENGINES; do
    if ! scripts/engine.sh start "$engine"; then errors+=("engine-$engine"); continue; fi
    eval "$(scripts/engine.sh env "$engine")"
    TSLINK_E2E_ENGINE=$engine stage "e2e-$engine" dist/test/e2e/*.test.js
  done
  scripts/engine.sh stop || true
else
  errors+=("provision")
fi

pass=0; fail=0
for tap in "$results"/*.tap; do
  [ -f "$tap" ] || continue
  p=$(grep -E '^# pass [0-9]+' "$tap" | tail -1 | awk '{print $3}')
  f=$(grep -E '^# fail [0-9]+' "$tap" | tail -1 | awk '{print $3}')
  if [ -z "$p" ]; then errors+=("$(basename "$tap" .tap): no summary"); fi
  pass=$((pass + ${p:-0})); fail=$((fail + ${f:-0}))
done
if [ ${#errors[@]} -gt 0 ]; then
  echo "stages with failures: ${errors[*]}"
  [ "$fail" -eq 0 ] && fail=1
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
