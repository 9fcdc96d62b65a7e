#!/usr/bin/env bash
# The one entry point to the local stack, used by the README, the tests and CI.
#
#   scripts/stack.sh up       Kafka (started here when nothing answers at KAFKA_BROKERS), Postgres and Redis
#                             (those at DATABASE_URL / REDIS_URL, or local ones started here), topics, migrations
#   scripts/stack.sh start    up, then the api and the consumer in the background; prints where all listens
#   scripts/stack.sh status   what runs, and who started it
#   scripts/stack.sh down     stops what this script started, nothing else (--purge also deletes Kafka's data)
#   scripts/stack.sh logs     where the logs are
#
# Safe to repeat: `up` and `start` reuse whatever already runs. Settings: docs/configuration.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

STACK_KAFKA_VERSION=${STACK_KAFKA_VERSION:-4.4.0}
# Two cores host the broker, Postgres, Redis and the apps: a small heap and few threads are plenty here.
STACK_KAFKA_HEAP=${STACK_KAFKA_HEAP:-768m}
STACK_KAFKA_CONTROLLER_PORT=${STACK_KAFKA_CONTROLLER_PORT:-9093}
KAFKA_JARS="$WB_CACHE_DIR/kafka-$STACK_KAFKA_VERSION/libs"
RUN="$WB_STATE_DIR/run"
LOGS="$WB_STATE_DIR/logs"

# ---------------------------------------------------------------- Kafka
kafka_jars() {
  [[ -f "$KAFKA_JARS/.complete" ]] && return
  command -v java >/dev/null || die "java is not installed: Kafka $STACK_KAFKA_VERSION needs a JDK 17+ (e.g. apt-get install openjdk-17-jdk-headless)"
  command -v mvn >/dev/null || die "mvn is not installed: it resolves the Kafka jars from Maven Central (apt-get install maven)"
  say "resolving Kafka $STACK_KAFKA_VERSION jars from Maven Central into $KAFKA_JARS"
  rm -rf "$KAFKA_JARS"
  mkdir -p "$LOGS"
  mvn -B -f "$ROOT/scripts/kafka/pom.xml" -Dkafka.version="$STACK_KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$KAFKA_JARS" >"$LOGS/kafka-mvn.log" 2>&1 ||
    die "mvn could not resolve org.apache.kafka:kafka_2.13:$STACK_KAFKA_VERSION: see $LOGS/kafka-mvn.log"
  touch "$KAFKA_JARS/.complete"
}

kafka_java() { java -cp "$KAFKA_JARS/*" "$@"; }

kafka_up() {
  local first=${KAFKA_BROKERS%%,*} host port
  host=${first%:*}
  port=${first##*:}
  if tcp_open "$host" "$port"; then
    pid_alive "$RUN/kafka.pid" && say "Kafka: already running (pid $(cat "$RUN/kafka.pid")) at $first" ||
      say "Kafka: reusing the broker that answers at $first"
    cli wait-kafka --timeout 60 >/dev/null
    return
  fi
  is_local_host "$host" || die "Kafka at $first does not answer, and it is not on this machine, so it cannot be started here"
  kafka_jars
  local dir="$WB_STATE_DIR/kafka-$port" props
  props="$dir/server.properties"
  mkdir -p "$dir/data" "$RUN" "$LOGS"
  cat >"$props" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$STACK_KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$STACK_KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
# One node: every internal topic has one replica.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Consumers in tests join and leave often; do not wait for more members before the first rebalance.
group.initial.rebalance.delay.ms=0
# Topics are created on purpose (scripts/stack.sh up, the ops CLI), never by a typo.
auto.create.topics.enable=false
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.check.interval.ms=60000
PROPS
  if [[ ! -f "$dir/data/meta.properties" ]]; then
    local cluster_id
    cluster_id=$(kafka_java kafka.tools.StorageTool random-uuid | tail -1)
    say "Kafka: formatting storage in $dir/data (cluster $cluster_id)"
    kafka_java kafka.tools.StorageTool format -t "$cluster_id" -c "$props" >"$LOGS/kafka-format.log" 2>&1 ||
      die "formatting Kafka storage failed: $LOGS/kafka-format.log"
  fi
  say "Kafka $STACK_KAFKA_VERSION: starting on $first (heap $STACK_KAFKA_HEAP, log $LOGS/kafka.log)"
  nohup java -Xms256m -Xmx"$STACK_KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.properties" -Dkafka.logfile="$LOGS/kafka.log" \
    -cp "$KAFKA_JARS/*" kafka.Kafka "$props" >"$LOGS/kafka.out" 2>&1 &
  echo $! >"$RUN/kafka.pid"
  for ((i = 0; i < 600; i++)); do
    tcp_open "$host" "$port" && break
    pid_alive "$RUN/kafka.pid" || die "Kafka exited during start: see $LOGS/kafka.log and $LOGS/kafka.out"
    sleep 0.1
  done
  cli wait-kafka --timeout 60 >/dev/null || die "Kafka did not answer: see $LOGS/kafka.log"
  say "Kafka: ready at $first"
}

# ---------------------------------------------------------------- Postgres
find_pg_bin() {
  local bin
  # Debian keeps the server binaries out of PATH; its wrappers in /usr/bin are not pg_ctl and initdb.
  bin=$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1 || true)
  [[ -n "$bin" ]] || bin=$(command -v initdb 2>/dev/null || true)
  [[ -n "$bin" ]] && dirname "$bin"
}

# Runs a command as the postgres user when we are root: initdb and postgres refuse to run as root.
as_pg_user() {
  if [[ $(id -u) -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || die "running as root and there is no 'postgres' user to run a local Postgres as"
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

postgres_up() {
  local host port db user
  host=$(url_part "$DATABASE_URL" hostname)
  port=$(url_part "$DATABASE_URL" port)
  if tcp_open "$host" "$port"; then
    say "Postgres: using the server at $host:$port"
    return
  fi
  is_local_host "$host" || die "Postgres at $host:$port (DATABASE_URL) does not answer and is not on this machine"
  local bin
  bin=$(find_pg_bin) || true
  [[ -n "$bin" ]] || die "Postgres at $host:$port (DATABASE_URL) does not answer, and no Postgres server binaries (pg_ctl, initdb) are installed: install PostgreSQL 14+ or point DATABASE_URL at a server"
  db=$(url_part "$DATABASE_URL" pathname)
  user=$(url_part "$DATABASE_URL" username)
  local dir="$WB_STATE_DIR/postgres-$port"
  # As root, the cluster belongs to the postgres user, who may not traverse root's home: keep it in /var/tmp.
  [[ $(id -u) -eq 0 ]] && dir="/var/tmp/writebehind-postgres-$port"
  mkdir -p "$dir" "$LOGS" "$RUN"
  if [[ $(id -u) -eq 0 ]]; then chown -R postgres "$dir"; fi
  if [[ ! -f "$dir/data/PG_VERSION" ]]; then
    say "Postgres: initialising a cluster in $dir/data"
    as_pg_user "$bin/initdb" -D "$dir/data" -U "${user:-postgres}" --auth=trust >"$dir/initdb.log" 2>&1 ||
      die "initdb failed: $dir/initdb.log"
  fi
  say "Postgres: starting a local server on $host:$port"
  as_pg_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null || die "Postgres did not start: $dir/postgres.log"
  head -1 "$dir/data/postmaster.pid" >"$RUN/postgres.pid"
  echo "$dir/data" >"$RUN/postgres.datadir"
  create_database "$DATABASE_URL"
}

# create_database URL: creates the URL's database when it does not exist (a fresh cluster has only "postgres").
create_database() {
  (cd "$ROOT" && node --input-type=module -e '
    import pg from "pg";
    const url = new URL(process.argv[1]);
    const name = decodeURIComponent(url.pathname.slice(1));
    url.pathname = "/postgres";
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    const { rowCount } = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (rowCount === 0) await client.query(`CREATE DATABASE "${name.replaceAll("\"", "\"\"")}"`);
    await client.end();
  ' "$1") || die "could not create the database of DATABASE_URL"
}

postgres_down() {
  pid_alive "$RUN/postgres.pid" || { rm -f "$RUN/postgres.pid"; return 0; }
  say "stopping Postgres"
  as_pg_user "$(find_pg_bin)/pg_ctl" -D "$(cat "$RUN/postgres.datadir")" -m fast -w stop >/dev/null || true
  rm -f "$RUN/postgres.pid"
}

# ---------------------------------------------------------------- Redis
redis_up() {
  local host port
  host=$(url_part "$REDIS_URL" hostname)
  port=$(url_part "$REDIS_URL" port)
  if tcp_open "$host" "$port"; then
    say "Redis: using the server at $host:$port"
    return
  fi
  is_local_host "$host" || die "Redis at $host:$port (REDIS_URL) does not answer and is not on this machine"
  command -v redis-server >/dev/null ||
    die "Redis at $host:$port (REDIS_URL) does not answer, and redis-server is not installed: install Redis 6+ or point REDIS_URL at a server"
  local dir="$WB_STATE_DIR/redis-$port"
  mkdir -p "$dir" "$LOGS" "$RUN"
  say "Redis: starting a local server on $host:$port"
  redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --save '' --appendonly no --dir "$dir" \
    --pidfile "$RUN/redis.pid" --logfile "$LOGS/redis.log" || die "redis-server did not start: $LOGS/redis.log"
  for ((i = 0; i < 100; i++)); do tcp_open "$host" "$port" && return; sleep 0.1; done
  die "Redis did not answer on $host:$port: $LOGS/redis.log"
}

# ---------------------------------------------------------------- apps
app_up() {
  local name=$1 host=$2 port=$3
  local probe_host=$host
  [[ "$host" == 0.0.0.0 || "$host" == "::" ]] && probe_host=127.0.0.1
  if pid_alive "$RUN/$name.pid"; then
    say "$name: already running (pid $(cat "$RUN/$name.pid"))"
    return
  fi
  tcp_open "$probe_host" "$port" && die "$name: port $port is taken by another process (set ${name^^}_PORT)"
  mkdir -p "$RUN" "$LOGS"
  nohup "${NODE_RUN[@]}" "$ROOT/dist/apps/$name/apps/$name/src/main.js" >>"$LOGS/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
  for ((i = 0; i < 600; i++)); do
    if curl -fsS -o /dev/null "http://$probe_host:$port/health/ready" 2>/dev/null; then
      say "$name: ready on http://$probe_host:$port"
      return
    fi
    pid_alive "$RUN/$name.pid" || die "$name exited during start: tail $LOGS/$name.log"
    sleep 0.1
  done
  die "$name did not become ready in 60s: tail $LOGS/$name.log"
}

# ---------------------------------------------------------------- commands
cmd_up() {
  ensure_node
  ensure_deps
  ensure_build
  load_env
  mkdir -p "$RUN" "$LOGS"
  postgres_up
  redis_up
  kafka_up
  cli topics
  cli migrate
}

cmd_start() {
  cmd_up
  app_up api "$API_HOST" "$API_PORT"
  app_up consumer "$CONSUMER_HOST" "$CONSUMER_PORT"
  local api_host=$API_HOST consumer_host=$CONSUMER_HOST
  [[ "$api_host" == 0.0.0.0 ]] && api_host=127.0.0.1
  [[ "$consumer_host" == 0.0.0.0 ]] && consumer_host=127.0.0.1
  cat <<MSG

  The stack is up.
    API          http://$api_host:$API_PORT        (POST /v1/..., GET /health/ready, GET /metrics)
    consumer     http://$consumer_host:$CONSUMER_PORT        (GET /health/ready, GET /metrics)
    Kafka        $KAFKA_BROKERS
    Postgres     $(url_part "$DATABASE_URL" hostname):$(url_part "$DATABASE_URL" port)/$(url_part "$DATABASE_URL" pathname) (schema $DATABASE_SCHEMA)
    Redis        $(url_part "$REDIS_URL" hostname):$(url_part "$REDIS_URL" port)
    logs         $LOGS
  Stop with: npm stop   (scripts/stack.sh down)

MSG
}

cmd_down() {
  stop_pid consumer "$RUN/consumer.pid" 30
  stop_pid api "$RUN/api.pid" 30
  stop_pid Kafka "$RUN/kafka.pid" 60
  postgres_down
  if pid_alive "$RUN/redis.pid"; then stop_pid Redis "$RUN/redis.pid" 10; fi
  if [[ "${1:-}" == --purge ]]; then
    say "deleting Kafka data in $WB_STATE_DIR/kafka-*"
    rm -rf "$WB_STATE_DIR"/kafka-*
  fi
  say "stopped what this script had started"
}

cmd_status() {
  ensure_node
  ensure_deps
  ensure_build
  load_env
  local first=${KAFKA_BROKERS%%,*} api_probe=$API_HOST consumer_probe=$CONSUMER_HOST
  [[ "$api_probe" == 0.0.0.0 ]] && api_probe=127.0.0.1
  [[ "$consumer_probe" == 0.0.0.0 ]] && consumer_probe=127.0.0.1
  status_line kafka "${first%:*}" "${first##*:}"
  status_line postgres "$(url_part "$DATABASE_URL" hostname)" "$(url_part "$DATABASE_URL" port)"
  status_line redis "$(url_part "$REDIS_URL" hostname)" "$(url_part "$REDIS_URL" port)"
  status_line api "$api_probe" "$API_PORT"
  status_line consumer "$consumer_probe" "$CONSUMER_PORT"
}

status_line() {
  local name=$1 host=$2 port=$3 state who
  tcp_open "$host" "$port" && state="answers at $host:$port" || state="down ($host:$port)"
  pid_alive "$RUN/$name.pid" && who="started by this script, pid $(cat "$RUN/$name.pid")" || who="not started by this script"
  printf '%-9s %-32s %s\n' "$name" "$state" "$who"
}

case "${1:-}" in
  up) cmd_up ;;
  start) cmd_start ;;
  down) shift; cmd_down "$@" ;;
  status) cmd_status ;;
  logs) echo "$LOGS" && ls -1 "$LOGS" 2>/dev/null ;;
  *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64 ;;
esac
