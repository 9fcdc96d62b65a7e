// Framework cost: the API's full ingest route (POST /v1/counters/{name}/increment, write-behind) against a no-op
// route of the same app and against a bare Fastify hello world (servers/fastify.server.ts), same load generator.
// The no-op route is the app's GET /health/live: it goes through everything the app puts around a route (Fastify
// under Nest, the trace hook, pino-http, the HTTP metrics, the exception filter) and does nothing itself; no
// bench-only route is added to the app. Servers run side by side, measured in ROUNDS alternating turns.
// Run: npm run bench -- framework   (DURATION=12 ROUNDS=3 WARMUP=3 CONNECTIONS=50)
import { incrementRequests, load, measureRounds } from './lib/load.ts';
import { type Row, Scenario, ratio } from './lib/report.ts';
import { App, BenchStack, envNumber } from './lib/stack.ts';

const DURATION = envNumber('DURATION', 12);
const ROUNDS = envNumber('ROUNDS', 3);
const WARMUP = envNumber('WARMUP', 3);
const CONNECTIONS = envNumber('CONNECTIONS', 50);
const COUNTERS = 1000;

const scenario = new Scenario(
  'framework',
  `Framework cost: full ingest route vs no-op route vs bare Fastify (${CONNECTIONS} connections, ${DURATION} s each)`,
  { DURATION, ROUNDS, WARMUP, CONNECTIONS, COUNTERS },
  ['DURATION', 'ROUNDS', 'WARMUP', 'CONNECTIONS'],
);

const FULL = 'API: POST increment (write-behind)';
const NOOP = 'API: GET /health/live (no-op)';
const BARE = 'bare Fastify: GET / (hello world)';

const rows: Row[] = [];
const stack = await BenchStack.create();
let api: App | undefined;
let bare: App | undefined;
try {
  api = await App.start('api', stack.env);
  bare = await App.script('fastify', 'servers/fastify.server.ts', {});
  const cases = [
    { variant: FULL, app: api, method: 'POST' as const, next: incrementRequests(COUNTERS) },
    { variant: NOOP, app: api, method: 'GET' as const, next: () => ({ path: '/health/live' }) },
    { variant: BARE, app: bare, method: 'GET' as const, next: () => ({ path: '/' }) },
  ];
  for (const c of cases) {
    await load({ url: c.app.url, connections: CONNECTIONS, durationSeconds: WARMUP, method: c.method, next: c.next });
  }
  const measured = await measureRounds(
    cases.map((c) => ({ name: c.variant, app: c.app, method: c.method, next: c.next })),
    { connections: CONNECTIONS, durationSeconds: DURATION, rounds: ROUNDS },
  );
  for (const [variant, r] of measured) {
    rows.push({
      bench: 'one request',
      variant,
      unit: 'req/s',
      rate: r.rps,
      p50Ms: r.p50,
      p99Ms: r.p99,
      extra: { errors: r.errors, 'CPU ms/req': Number(r.cpuMsPerRequest.toFixed(3)), 'RSS MB': Math.round(r.rssMb) },
    });
  }
} finally {
  await api?.stop();
  await bare?.stop();
  await stack.dispose();
}

const rate = (variant: string) => rows.find((r) => r.variant === variant)?.rate ?? NaN;
const cpu = (variant: string) => Number(rows.find((r) => r.variant === variant)?.extra?.['CPU ms/req'] ?? NaN);
await scenario.report(rows, [
  ratio('full ingest route / no-op route req/s', rate(FULL) / rate(NOOP), { op: '>=', threshold: 0.5 }),
  ratio('no-op route / bare Fastify req/s', rate(NOOP) / rate(BARE), { op: '>=', threshold: 0.85 }),
  ratio('full ingest route / bare Fastify req/s', rate(FULL) / rate(BARE)),
  ratio('CPU per request: no-op route / full ingest route', cpu(NOOP) / cpu(FULL)),
  ratio('CPU per request: bare Fastify / no-op route', cpu(BARE) / cpu(NOOP)),
]);
