// Ingestion throughput and latency: the API in write-behind mode (Redis view + Kafka, the default) against the
// same API in write-through mode (Postgres + Redis synchronously, the fallback) and against a naive server doing
// one INSERT per request (servers/naive.server.ts), single increments and batches, same load generator. The three
// servers run side by side; each endpoint shape is measured on each in turn, in ROUNDS alternating turns, so the
// ratios hold on a noisy machine (the absolute numbers do not travel). No consumer runs: this measures the API alone.
// Run: npm run bench -- ingest   (DURATION=12 ROUNDS=3 WARMUP=3 CONNECTIONS=50 BATCH=100 COUNTERS=1000)
import { incrementRequests, load, measureRounds } from './lib/load.ts';
import { type Row, Scenario, ratio } from './lib/report.ts';
import { App, BenchStack, envNumber, shared } from './lib/stack.ts';

const DURATION = envNumber('DURATION', 12);
const WARMUP = envNumber('WARMUP', 3);
const CONNECTIONS = envNumber('CONNECTIONS', 50);
const ROUNDS = envNumber('ROUNDS', 3);
const BATCH = envNumber('BATCH', 100);
const COUNTERS = envNumber('COUNTERS', 1000);

const scenario = new Scenario(
  'ingest',
  `Ingestion: write-behind vs write-through vs naive INSERT (${CONNECTIONS} connections, ${DURATION} s each)`,
  { DURATION, ROUNDS, WARMUP, CONNECTIONS, BATCH, COUNTERS },
  ['DURATION', 'ROUNDS', 'WARMUP', 'CONNECTIONS', 'BATCH', 'COUNTERS'],
);

const WB = 'write-behind (API)';
const WT = 'write-through (API)';
const NAIVE = 'naive INSERT per request';
const SINGLE = 'single increment';
const BATCHED = `batch of ${BATCH}`;

const rows: Row[] = [];
const stack = await BenchStack.create();
const servers: { variant: string; app: App }[] = [];
try {
  servers.push({ variant: WB, app: await App.start('api', { ...stack.env, API_WRITE_MODE_COUNTERS: 'write-behind' }) });
  servers.push({
    variant: WT,
    app: await App.start('api', { ...stack.env, API_WRITE_MODE_COUNTERS: 'write-through' }),
  });
  servers.push({
    variant: NAIVE,
    app: await App.script('naive', 'servers/naive.server.ts', {
      DATABASE_URL: shared.DATABASE_URL,
      DATABASE_SCHEMA: stack.id,
    }),
  });
  // Warm-up: JIT, connection pools, topic metadata.
  for (const { app } of servers) {
    await load({ url: app.url, connections: CONNECTIONS, durationSeconds: WARMUP, next: incrementRequests(COUNTERS) });
  }
  for (const batch of [undefined, BATCH]) {
    const bench = batch === undefined ? SINGLE : BATCHED;
    const measured = await measureRounds(
      servers.map(({ variant, app }) => ({ name: variant, app, next: incrementRequests(COUNTERS, batch) })),
      { connections: CONNECTIONS, durationSeconds: DURATION, rounds: ROUNDS },
    );
    for (const [variant, r] of measured) {
      rows.push({
        bench,
        variant,
        unit: 'req/s',
        rate: r.rps,
        p50Ms: r.p50,
        p99Ms: r.p99,
        extra: {
          'events/s': Math.round(r.rps * (batch ?? 1)),
          errors: r.errors,
          'CPU ms/req': Number(r.cpuMsPerRequest.toFixed(3)),
          'RSS MB': Math.round(r.rssMb),
        },
      });
    }
  }
} finally {
  await Promise.all(servers.map(({ app }) => app.stop()));
  await stack.dispose();
}

const row = (bench: string, variant: string) => rows.find((r) => r.bench === bench && r.variant === variant);
const rate = (bench: string, variant: string) => row(bench, variant)?.rate ?? NaN;
const p99 = (bench: string, variant: string) => row(bench, variant)?.p99Ms ?? NaN;
const cpu = (bench: string, variant: string) => Number(row(bench, variant)?.extra?.['CPU ms/req'] ?? NaN);
await scenario.report(rows, [
  ratio('single: write-behind / write-through req/s', rate(SINGLE, WB) / rate(SINGLE, WT), { op: '>=', threshold: 5 }),
  ratio('single: write-behind / write-through p99', p99(SINGLE, WB) / p99(SINGLE, WT), { op: '<=', threshold: 0.5 }),
  ratio(`${BATCHED}: write-behind / write-through req/s`, rate(BATCHED, WB) / rate(BATCHED, WT), {
    op: '>=',
    threshold: 5,
  }),
  ratio(`${BATCHED}: write-behind / write-through p99`, p99(BATCHED, WB) / p99(BATCHED, WT), {
    op: '<=',
    threshold: 0.5,
  }),
  ratio('single: CPU per request, write-through / write-behind', cpu(SINGLE, WT) / cpu(SINGLE, WB)),
  ratio(`${BATCHED}: CPU per request, write-through / write-behind`, cpu(BATCHED, WT) / cpu(BATCHED, WB)),
  ratio('single: write-behind / naive INSERT req/s', rate(SINGLE, WB) / rate(SINGLE, NAIVE)),
  ratio(`${BATCHED}: write-behind / naive INSERT req/s`, rate(BATCHED, WB) / rate(BATCHED, NAIVE)),
  ratio(`write-behind: ${BATCHED} events/s / single events/s`, (rate(BATCHED, WB) * BATCH) / rate(SINGLE, WB)),
]);
