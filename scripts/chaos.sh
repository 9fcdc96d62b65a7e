#!/usr/bin/env bash
# `npm run chaos -- [--duration 30m] [--seed N] [...]` (--help for every option): a chaos run against a private
# Kafka broker, Postgres and Redis that it starts, stops, kills and flushes; the shared stack is not touched.
# Needs the built apps (dist/, `npm run build`) and the Kafka jars (`scripts/stack.sh up` resolves them once).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$ROOT"
export TZ=UTC
ensure_node
ensure_deps
for app in api consumer cli; do
  [[ -f "$ROOT/dist/apps/$app/apps/$app/src/main.js" ]] || die "dist/ has no $app: run \`npm run build\` first"
done
export NODE_OPTIONS="${NODE_OPTIONS:-} --disable-warning=TimeoutNegativeWarning"
exec node scripts/chaos-runner.js "$@"
