// Ingestion throughput and latency of the API, write-behind against write-through, single and batch, side by
// side in one run on one machine (so the ratios hold even when the machine is noisy; the absolute numbers do
// not travel). Run: npm run bench -- ingest   (DURATION=10 CONNECTIONS=50 to change the load)
import autocannon from 'autocannon';
import { type Row, report } from './lib/report.ts';
import { App, BenchStack } from './lib/stack.ts';

const DURATION = Number(process.env['DURATION'] ?? 10);
const CONNECTIONS = Number(process.env['CONNECTIONS'] ?? 50);
const BATCH = 100;
const COUNTERS = 1000;

let seq = 0;
const counter = () => `bench:${(seq++ * 7919) % COUNTERS}`;

async function load(url: string, batch: boolean) {
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: DURATION,
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        setupRequest: (request) =>
          batch
            ? {
                ...request,
                path: '/v1/counters/batch',
                body: JSON.stringify({ increments: Array.from({ length: BATCH }, () => ({ name: counter(), by: 1 })) }),
              }
            : { ...request, path: `/v1/counters/${counter()}/increment`, body: '{"by":1}' },
      },
    ],
  });
  const ok = result['2xx'];
  return {
    ok,
    errors: result.non2xx + result.errors + result.timeouts,
    rps: ok / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
  };
}

const rows: Row[] = [];
const stack = await BenchStack.create();
try {
  for (const mode of ['write-behind', 'write-through'] as const) {
    const api = await App.start('api', { ...stack.env, API_WRITE_MODE_COUNTERS: mode });
    try {
      await load(api.url, false); // warm-up: JIT, connections, topic metadata
      for (const batch of [false, true]) {
        const r = await load(api.url, batch);
        rows.push({
          bench: batch ? `batch of ${BATCH}` : 'single increment',
          variant: mode,
          unit: 'req/s',
          rate: r.rps,
          p50Ms: r.p50,
          p99Ms: r.p99,
          extra: { 'events/s': Math.round(r.rps * (batch ? BATCH : 1)), errors: r.errors },
        });
      }
    } finally {
      await api.stop();
    }
  }
} finally {
  await stack.dispose();
}

const rate = (bench: string, variant: string) =>
  rows.find((r) => r.bench === bench && r.variant === variant)?.rate ?? NaN;
report(`ingest (${CONNECTIONS} connections, ${DURATION}s each)`, rows, [
  {
    label: 'single: write-behind / write-through req/s',
    value: rate('single increment', 'write-behind') / rate('single increment', 'write-through'),
  },
  {
    label: `batch: write-behind / write-through req/s`,
    value: rate(`batch of ${BATCH}`, 'write-behind') / rate(`batch of ${BATCH}`, 'write-through'),
  },
  {
    label: `write-behind: batch events/s / single events/s`,
    value: (rate(`batch of ${BATCH}`, 'write-behind') * BATCH) / rate('single increment', 'write-behind'),
  },
]);
