#!/usr/bin/env bash
# `npm run bench [-- name...]`: brings the stack up (as npm test does), builds, and runs bench/*.bench.ts.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$ROOT"
ensure_node
ensure_deps
bash "$ROOT/scripts/stack.sh" up >&2
load_env
export NODE_OPTIONS="${NODE_OPTIONS:-} --disable-warning=TimeoutNegativeWarning --disable-warning=ExperimentalWarning"
exec node bench/run.ts "$@"
