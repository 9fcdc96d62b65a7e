// Framework cost: the API's full ingest route (POST /v1/counters/{name}/increment, write-behind) against a no-op
// route of the same app and against a bare Fastify hello world (servers/fastify.server.ts), same load generator.
// The no-op route is the app's GET /health/live: it goes through everything the app puts around a route (Fastify
// under Nest, the trace hook, pino-http, the HTTP metrics, the exception filter) and does nothing itself; no
// bench-only route is added to the app. And a read: the API's GET /v1/counters/{name} of counters whose view is in
// Redis against the same read in the minimal same-work server (servers/minimal-writebehind.server.ts: one script
// call, a schema-compiled answer). Servers run side by side, measured in ROUNDS alternating turns.
// Run: npm run bench -- framework   (DURATION=12 ROUNDS=3 WARMUP=3 CONNECTIONS=50)
import { counterNames, incrementRequests, load, measureRounds } from './lib/load.ts';
import { type Row, Scenario, ratio } from './lib/report.ts';
import { App, BenchStack, envNumber } from './lib/stack.ts';

const DURATION = envNumber('DURATION', 12);
const ROUNDS = envNumber('ROUNDS', 3);
const WARMUP = envNumber('WARMUP', 3);
const CONNECTIONS = envNumber('CONNECTIONS', 50);
const COUNTERS = 1000;

const scenario = new Scenario(
  'framework',
  `Framework cost: full ingest route vs no-op route vs bare Fastify; counter read vs a minimal server (${CONNECTIONS} connections, ${DURATION} s each)`,
  { DURATION, ROUNDS, WARMUP, CONNECTIONS, COUNTERS },
  ['DURATION', 'ROUNDS', 'WARMUP', 'CONNECTIONS'],
);

const FULL = 'API: POST increment (write-behind)';
const NOOP = 'API: GET /health/live (no-op)';
const BARE = 'bare Fastify: GET / (hello world)';
const READ = 'API: GET counter (in the view)';
const MIN_READ = 'minimal server: GET counter';
const read = () => {
  const name = counterNames(COUNTERS);
  return () => ({ path: `/v1/counters/${name()}` });
};

const rows: Row[] = [];
const stack = await BenchStack.create();
let api: App | undefined;
let bare: App | undefined;
let minimal: App | undefined;
try {
  api = await App.start('api', stack.env);
  bare = await App.script('fastify', 'servers/fastify.server.ts', {});
  minimal = await App.script('minimal', 'servers/minimal-writebehind.server.ts', stack.env, '/health/ready');
  // The counters read: written once, then read once through the API, which fills each one's base in the view (a
  // miss reads Postgres), so that the measured reads are hits: Redis only, in both servers (same keys).
  const names = Array.from({ length: COUNTERS }, counterNames(COUNTERS));
  const written = await fetch(`${api.url}/v1/counters/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ increments: names.map((name) => ({ name })) }),
  });
  if (written.status !== 202) throw new Error(`the counters were not written: ${written.status}`);
  for (const name of names) await (await fetch(`${api.url}/v1/counters/${name}`)).arrayBuffer();
  const cases = [
    { variant: FULL, app: api, method: 'POST' as const, next: incrementRequests(COUNTERS) },
    { variant: NOOP, app: api, method: 'GET' as const, next: () => ({ path: '/health/live' }) },
    { variant: BARE, app: bare, method: 'GET' as const, next: () => ({ path: '/' }) },
    { variant: READ, app: api, method: 'GET' as const, next: read() },
    { variant: MIN_READ, app: minimal, method: 'GET' as const, next: read() },
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
      bench: variant === READ || variant === MIN_READ ? 'counter read' : 'one request',
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
  await minimal?.stop();
  await stack.dispose();
}

const rate = (variant: string) => rows.find((r) => r.variant === variant)?.rate ?? NaN;
const p99 = (variant: string) => rows.find((r) => r.variant === variant)?.p99Ms ?? NaN;
const cpu = (variant: string) => Number(rows.find((r) => r.variant === variant)?.extra?.['CPU ms/req'] ?? NaN);
await scenario.report(rows, [
  ratio('full ingest route / no-op route req/s', rate(FULL) / rate(NOOP), { op: '>=', threshold: 0.5 }),
  ratio('no-op route / bare Fastify req/s', rate(NOOP) / rate(BARE), { op: '>=', threshold: 0.85 }),
  ratio('full ingest route / bare Fastify req/s', rate(FULL) / rate(BARE)),
  ratio('CPU per request: no-op route / full ingest route', cpu(NOOP) / cpu(FULL)),
  ratio('CPU per request: bare Fastify / no-op route', cpu(BARE) / cpu(NOOP)),
  ratio('GET counter: API / minimal server req/s', rate(READ) / rate(MIN_READ), { op: '>=', threshold: 0.8 }),
  ratio('GET counter: API / minimal server p99', p99(READ) / p99(MIN_READ)),
  ratio('GET counter: CPU per request, API / minimal server', cpu(READ) / cpu(MIN_READ)),
]);
