// Growth: how the figures move as the load changes shape.
//   keys    the consumer's apply rate as the distinct counters of the events grow (1, 1k, 100k, 1M): every event
//           a counter increment; EVENTS events, or as many as keys when that is more, so every key is written
//   batch   the apply rate as the most events per transaction grows (CONSUMER_BATCH_MAX_EVENTS 100 ... 20,000,
//           with CONSUMER_BATCH_MAX_BYTES 4 MiB so the count is what binds), 1,000 counters
//   ingest  the API's p50/p99 as the request grows (batches of 1 ... 1,000 increments), write-behind
//   memory  the most resident memory of each app seen in the runs above (both at saturation)
// Run: npm run bench -- growth   (PARTS=keys,batch,ingest KEYS=1,1000,100000,1000000 EVENTS=300000
//      BATCHES=100,1000,5000,20000 ITEMS=1,10,100,1000 DURATION=10 CONNECTIONS=20)
import { Workload, drain, drainRow, produceBacklog } from './lib/drain.ts';
import { incrementRequests, load } from './lib/load.ts';
import { type Row, Scenario, ratio } from './lib/report.ts';
import { App, BenchStack, envNumber, envNumbers, peakRss } from './lib/stack.ts';

const PARTS = (process.env['PARTS'] ?? 'keys,batch,ingest').split(',');
const KEYS = envNumbers('KEYS', [1, 1000, 100_000, 1_000_000]);
const EVENTS = envNumber('EVENTS', 300_000);
const BATCHES = envNumbers('BATCHES', [100, 1000, 5000, 20_000]);
const ITEMS = envNumbers('ITEMS', [1, 10, 100, 1000]);
const DURATION = envNumber('DURATION', 10);
const CONNECTIONS = envNumber('CONNECTIONS', 20);

const scenario = new Scenario(
  'growth',
  'Growth: apply rate vs distinct keys and batch size, ingest latency vs request size, memory at saturation',
  {
    PARTS: PARTS.join(','),
    KEYS: KEYS.join(','),
    EVENTS,
    BATCHES: BATCHES.join(','),
    ITEMS: ITEMS.join(','),
    DURATION,
    CONNECTIONS,
  },
  ['PARTS', 'KEYS', 'EVENTS', 'BATCHES', 'ITEMS', 'DURATION', 'CONNECTIONS'],
);

const rows: Row[] = [];
let consumerRss = 0;
let apiRss = 0;

async function applyRate(bench: string, variant: string, work: Workload, settings: Record<string, string> = {}) {
  const stack = await BenchStack.create();
  try {
    await produceBacklog(stack, work);
    const drained = await drain(stack, work, 1, settings);
    consumerRss = Math.max(consumerRss, drained.rssMb);
    rows.push(drainRow(bench, variant, drained));
  } finally {
    await stack.dispose();
  }
}

if (PARTS.includes('keys')) {
  for (const keys of KEYS) {
    const events = Math.max(EVENTS, keys);
    await applyRate(
      'apply vs distinct keys',
      `${keys.toLocaleString('en-US')} key${keys === 1 ? '' : 's'}, ${events.toLocaleString('en-US')} events`,
      new Workload(events, keys, 0),
    );
  }
}

if (PARTS.includes('batch')) {
  for (const batch of BATCHES) {
    await applyRate(
      'apply vs batch size',
      `at most ${batch.toLocaleString('en-US')} events/transaction`,
      new Workload(EVENTS, 1000, 0),
      {
        CONSUMER_BATCH_MAX_EVENTS: String(batch),
        CONSUMER_BATCH_MAX_BYTES: String(4 * 1024 * 1024),
      },
    );
  }
}

if (PARTS.includes('ingest')) {
  const stack = await BenchStack.create();
  try {
    const api = await App.start('api', stack.env);
    try {
      await load({ url: api.url, connections: CONNECTIONS, durationSeconds: 3, next: incrementRequests(1000) });
      for (const items of ITEMS) {
        const { result: r, rssMb } = await peakRss(api, () =>
          load({
            url: api.url,
            connections: CONNECTIONS,
            durationSeconds: DURATION,
            next: incrementRequests(1000, { batch: items }),
          }),
        );
        apiRss = Math.max(apiRss, rssMb);
        rows.push({
          bench: 'ingest vs request size',
          variant: `batch of ${items.toLocaleString('en-US')}`,
          unit: 'req/s',
          rate: r.rps,
          p50Ms: r.p50,
          p99Ms: r.p99,
          extra: { 'events/s': Math.round(r.rps * items), errors: r.errors, 'RSS MB': Math.round(rssMb) },
        });
      }
    } finally {
      await api.stop();
    }
  } finally {
    await stack.dispose();
  }
}

const ratios = [];
if (apiRss > 0) ratios.push(ratio('API: most RSS at saturation, MB', apiRss, { op: '<=', threshold: 300 }));
if (consumerRss > 0)
  ratios.push(ratio('consumer: most RSS at saturation, MB', consumerRss, { op: '<=', threshold: 300 }));
const keyRows = rows.filter((r) => r.bench === 'apply vs distinct keys');
if (keyRows.length > 1) {
  ratios.push(
    ratio(
      `apply: ${keyRows.at(-1)?.variant} / ${keyRows[0]?.variant}`,
      (keyRows.at(-1)?.rate ?? NaN) / (keyRows[0]?.rate ?? NaN),
    ),
  );
}
const ingestRows = rows.filter((r) => r.bench === 'ingest vs request size');
if (ingestRows.length > 1) {
  ratios.push(
    ratio(
      `ingest p99: ${ingestRows.at(-1)?.variant} / ${ingestRows[0]?.variant}`,
      (ingestRows.at(-1)?.p99Ms ?? NaN) / (ingestRows[0]?.p99Ms ?? NaN),
    ),
  );
}
await scenario.report(rows, ratios, [
  'RSS is the resident set of the app process (VmRSS from /proc, sampled every 250 ms) during the runs above; ' +
    'the consumer figure covers the `keys` and `batch` parts, the API figure the `ingest` part.',
]);
