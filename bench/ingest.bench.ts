// Ingestion throughput, latency and CPU per event, side by side in one run: the API in write-behind mode (Redis view
// + Kafka, the default); a minimal server doing the same work with the same guarantees by hand on plain Fastify
// (servers/minimal-writebehind.server.ts), which shows what the API's own code costs; the API in write-through mode
// (Postgres + Redis synchronously, the fallback); and two naive servers without write-behind
// (servers/naive.server.ts): one append-only INSERT per request, and one upsert of the counter per request.
//
// Request shapes (SHAPES): `single` increments without an Idempotency-Key, `keyed` single increments each with a
// fresh key (the naive servers ignore keys and are left out), `batch` of BATCH items without ids. Key distributions
// (DISTRIBUTIONS): `uniform` over COUNTERS counters, `hot` with half of the writes on one counter. Each shape and
// distribution is measured on every server in ROUNDS alternating turns, so the ratios hold on a noisy machine.
//
// A consumer runs throughout, and after each turn of a write-behind server the benchmark waits until it has applied
// everything Kafka acknowledged: that drain is part of the turn's whole-box CPU, which adds to the server's own CPU
// that of Redis, Kafka, Postgres (every process of each, from /proc) and, for write-behind, the consumer's. The load
// generator's CPU is not counted. Run: npm run bench -- ingest
// (DURATION=12 ROUNDS=3 WARMUP=3 CONNECTIONS=50 BATCH=100 COUNTERS=1000 SHAPES=single,keyed,batch
// DISTRIBUTIONS=uniform,hot)
import { setTimeout as sleep } from 'node:timers/promises';
import { servicesCpuSeconds } from './lib/box.ts';
import { applied } from './lib/drain.ts';
import { type Distribution, incrementRequests, load, measureRounds } from './lib/load.ts';
import { type Ratio, type Row, Scenario, ratio } from './lib/report.ts';
import { App, BenchStack, envList, envNumber, shared } from './lib/stack.ts';

const DURATION = envNumber('DURATION', 12);
const WARMUP = envNumber('WARMUP', 3);
const CONNECTIONS = envNumber('CONNECTIONS', 50);
const ROUNDS = envNumber('ROUNDS', 3);
const BATCH = envNumber('BATCH', 100);
const COUNTERS = envNumber('COUNTERS', 1000);
type Shape = 'single' | 'keyed' | 'batch';
const SHAPES = envList<Shape>('SHAPES', ['single', 'keyed', 'batch']);
const DISTRIBUTIONS = envList<Distribution>('DISTRIBUTIONS', ['uniform', 'hot']);

const scenario = new Scenario(
  'ingest',
  `Ingestion: API write-behind vs a minimal same-work server vs write-through vs naive INSERT and upsert (${CONNECTIONS} connections, ${DURATION} s each)`,
  {
    DURATION,
    ROUNDS,
    WARMUP,
    CONNECTIONS,
    BATCH,
    COUNTERS,
    SHAPES: SHAPES.join(','),
    DISTRIBUTIONS: DISTRIBUTIONS.join(','),
  },
  ['DURATION', 'ROUNDS', 'WARMUP', 'CONNECTIONS', 'BATCH', 'COUNTERS', 'SHAPES', 'DISTRIBUTIONS'],
);

const WB = 'write-behind (API)';
const MIN = 'minimal same-work server';
const WT = 'write-through (API)';
const INSERT = 'naive INSERT';
const UPSERT = 'naive upsert';

const shapeLabel = (shape: Shape) =>
  shape === 'single' ? 'single' : shape === 'keyed' ? 'single keyed' : `batch of ${BATCH}`;
const benchName = (shape: Shape, distribution: Distribution) => `${shapeLabel(shape)}, ${distribution}`;

interface Server {
  variant: string;
  app: App;
  /** Its writes go through Kafka: the consumer runs its drain, and its CPU counts. */
  writeBehind: boolean;
  /** Honours Idempotency-Key (measured in the `keyed` shape). */
  keyed: boolean;
}

const rows: Row[] = [];
const stack = await BenchStack.create();
const admin = stack.kafka.admin();
await admin.connect();
const servers: Server[] = [];
let consumer: App | undefined;
try {
  const api = (mode: string) => App.start('api', { ...stack.env, API_WRITE_MODE_COUNTERS: mode });
  const naive = (name: string, mode: string) =>
    App.script(name, 'servers/naive.server.ts', {
      DATABASE_URL: shared.DATABASE_URL,
      DATABASE_SCHEMA: stack.id,
      NAIVE_MODE: mode,
    });
  servers.push({ variant: WB, app: await api('write-behind'), writeBehind: true, keyed: true });
  servers.push({
    variant: MIN,
    // The same Redis prefix and topic as the API: the consumer applies its events and reconciles its view.
    app: await App.script('minimal', 'servers/minimal-writebehind.server.ts', stack.env, '/health/ready'),
    writeBehind: true,
    keyed: true,
  });
  servers.push({ variant: WT, app: await api('write-through'), writeBehind: false, keyed: true });
  servers.push({ variant: INSERT, app: await naive('naive', 'insert'), writeBehind: false, keyed: false });
  servers.push({ variant: UPSERT, app: await naive('naive-upsert', 'upsert'), writeBehind: false, keyed: false });
  const drainer = await App.start('consumer', stack.env);
  consumer = drainer;

  // Until the consumer's stored offsets reach the end of the topic, as it stands once the last answer went out.
  const topic = stack.env['KAFKA_TOPIC_COUNTERS'] ?? '';
  const end = async () => (await admin.fetchTopicOffsets(topic)).reduce((sum, p) => sum + Number(p.high), 0);
  const drain = async () => {
    let target = await end();
    const deadline = Date.now() + 600_000;
    for (;;) {
      drainer.assertRunning();
      const done = await applied(stack);
      // Answers still on their way when the load stopped may have added events since: look at the end again.
      if (done >= target && done >= (target = await end())) return;
      if (Date.now() > deadline) throw new Error(`the consumer applied ${done} of ${target} events in 10 minutes`);
      await sleep(100);
    }
  };
  const box = (server: Server) => () => ({
    server: server.app.cpuSeconds(),
    ...(server.writeBehind ? { consumer: drainer.cpuSeconds() } : {}),
    ...servicesCpuSeconds(),
  });

  // Warm-up: JIT, connection pools, topic metadata, the consumer's group membership.
  for (const server of servers) {
    const next = incrementRequests(COUNTERS);
    await load({ url: server.app.url, connections: CONNECTIONS, durationSeconds: WARMUP, next });
    if (server.writeBehind) await drain();
  }
  for (const distribution of DISTRIBUTIONS) {
    for (const shape of SHAPES) {
      const batch = shape === 'batch' ? BATCH : undefined;
      const measured = await measureRounds(
        servers
          .filter((server) => shape !== 'keyed' || server.keyed)
          .map((server) => ({
            name: server.variant,
            app: server.app,
            next: incrementRequests(COUNTERS, { batch, distribution, keyed: shape === 'keyed' }),
            box: box(server),
            ...(server.writeBehind ? { settle: drain } : {}),
          })),
        { connections: CONNECTIONS, durationSeconds: DURATION, rounds: ROUNDS },
      );
      for (const [variant, r] of measured) {
        const events = r.ok * (batch ?? 1);
        const micros = (seconds: number) => Number(((seconds * 1e6) / Math.max(1, events)).toFixed(1));
        const { consumer: consumerCpu, redis = 0, kafka = 0, postgres = 0 } = r.box;
        const whole = Object.values(r.box).reduce((sum, seconds) => sum + seconds, 0);
        rows.push({
          bench: benchName(shape, distribution),
          variant,
          unit: 'req/s',
          rate: r.rps,
          p50Ms: r.p50,
          p99Ms: r.p99,
          extra: {
            'events/s': Math.round(r.rps * (batch ?? 1)),
            errors: r.errors,
            'app µs/event': micros(r.cpuSeconds),
            'box µs/event': micros(whole),
            ...(consumerCpu === undefined ? {} : { 'consumer µs': micros(consumerCpu) }),
            'Redis µs': micros(redis),
            'Kafka µs': micros(kafka),
            'Postgres µs': micros(postgres),
            ...(consumerCpu === undefined ? {} : { 'drain s': Number(r.settleSeconds.toFixed(1)) }),
            'RSS MB': Math.round(r.rssMb),
          },
        });
      }
    }
  }
} finally {
  await Promise.all([...servers.map(({ app }) => app.stop()), consumer?.stop()]);
  await admin.disconnect();
  await stack.dispose();
}

const row = (bench: string, variant: string) => rows.find((r) => r.bench === bench && r.variant === variant);
const rate = (r: Row) => r.rate;
const p99 = (r: Row) => r.p99Ms ?? NaN;
const extra = (name: string) => (r: Row) => Number(r.extra?.[name] ?? NaN);
const ratios: Ratio[] = [];
/** `a` over `b` by `measure`, when both were measured (SHAPES and DISTRIBUTIONS may leave some out). */
const compare = (
  label: string,
  bench: string,
  a: string,
  b: string,
  measure: (r: Row) => number,
  target?: Ratio['target'],
) => {
  const ra = row(bench, a);
  const rb = row(bench, b);
  if (ra && rb) ratios.push(ratio(`${bench}: ${label}`, measure(ra) / measure(rb), target));
};
for (const distribution of DISTRIBUTIONS) {
  for (const shape of SHAPES) {
    const bench = benchName(shape, distribution);
    compare('API / minimal req/s', bench, WB, MIN, rate, { op: '>=', threshold: 0.8 });
    compare('API / minimal p99', bench, WB, MIN, p99, { op: '<=', threshold: 1.25 });
    compare('API / minimal app CPU per event', bench, WB, MIN, extra('app µs/event'));
    if (shape === 'single') {
      compare('write-behind / naive upsert req/s', bench, WB, UPSERT, rate, { op: '>=', threshold: 2 });
      compare('write-behind / naive INSERT req/s', bench, WB, INSERT, rate, { op: '>=', threshold: 1.5 });
    }
    if (shape === 'batch') {
      compare('write-behind / naive INSERT events/s', bench, WB, INSERT, rate, { op: '>=', threshold: 1 });
      compare('write-behind / naive upsert events/s', bench, WB, UPSERT, rate);
    }
    if (shape !== 'keyed') {
      compare('whole-box CPU per event, write-behind / naive upsert', bench, WB, UPSERT, extra('box µs/event'));
    }
    if (distribution === 'uniform' && shape !== 'keyed') {
      compare('write-behind / write-through req/s', bench, WB, WT, rate, { op: '>=', threshold: 5 });
      compare('write-behind / write-through p99', bench, WB, WT, p99, { op: '<=', threshold: 0.5 });
    }
  }
}
await scenario.report(rows, ratios, [
  'CPU per event is CPU seconds over acknowledged events (2xx answers times the events each carries): `app` is the ' +
    'server process while loaded; `box` adds Redis, Kafka and Postgres (all their processes, from /proc) and, for ' +
    'the two write-behind servers, the consumer, from the start of each turn until the consumer has applied what ' +
    'was acknowledged (`drain s`, summed over the rounds). The load generator is not counted. The naive servers ' +
    'ignore Idempotency-Key and are not measured in the keyed shape. The hot distribution puts every other write ' +
    'on one counter.',
]);
