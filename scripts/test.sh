#!/usr/bin/env bash
# `npm test`: the whole suite, from a fresh clone. Installs what is missing (Node 24, node_modules, Kafka jars),
# checks format, lint and types, builds, brings the stack up (reusing what runs), then runs the unit and
# integration tests against the real Kafka, Postgres and Redis. Extra arguments go to vitest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$ROOT"
export TZ=UTC
# Test workers load kafkajs too; see NODE_RUN in lib/common.sh for why this warning is silenced.
export NODE_OPTIONS="${NODE_OPTIONS:-} --disable-warning=TimeoutNegativeWarning"

ensure_node
say "node $(node -v), npm $(npm -v)"
ensure_deps
say "check: format, lint, types"
npm run --silent check
bash "$ROOT/scripts/stack.sh" up
load_env
exec npx vitest run "$@"
