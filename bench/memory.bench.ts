// The API's memory at saturation: the heap flags the API image ships (the Dockerfile's NODE_OPTIONS) against none
// (V8's defaults on this 24 GB machine, which let the heap grow far before collecting), side by side in ROUNDS
// alternating turns of batches of BATCH increments. The flags are read from the Dockerfile, so what is measured is
// what ships. Run: npm run bench -- memory   (DURATION=30 ROUNDS=3 WARMUP=3 CONNECTIONS=20 BATCH=100)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { incrementRequests, load, measureRounds } from './lib/load.ts';
import { type Row, Scenario, ratio } from './lib/report.ts';
import { App, BenchStack, ROOT, envNumber } from './lib/stack.ts';

const DURATION = envNumber('DURATION', 30);
const ROUNDS = envNumber('ROUNDS', 3);
const WARMUP = envNumber('WARMUP', 3);
const CONNECTIONS = envNumber('CONNECTIONS', 20);
const BATCH = envNumber('BATCH', 100);

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const imageFlags = /^ENV NODE_OPTIONS="([^"]+)"/m.exec(dockerfile)?.[1];
if (imageFlags === undefined) throw new Error('no ENV NODE_OPTIONS="..." in the Dockerfile');

const scenario = new Scenario(
  'memory',
  `API memory at saturation: the image's heap flags vs V8's defaults (batches of ${BATCH}, ${CONNECTIONS} connections)`,
  { DURATION, ROUNDS, WARMUP, CONNECTIONS, BATCH },
  ['DURATION', 'ROUNDS', 'WARMUP', 'CONNECTIONS', 'BATCH'],
);

const CAPPED = `API, ${imageFlags}`;
const DEFAULT = 'API, no heap flags';
const rows: Row[] = [];
const stack = await BenchStack.create();
const apps: App[] = [];
try {
  const capped = await App.start('api', stack.env, imageFlags.split(' '));
  apps.push(capped);
  const uncapped = await App.start('api', stack.env);
  apps.push(uncapped);
  const next = incrementRequests(1000, { batch: BATCH });
  for (const app of apps) await load({ url: app.url, connections: CONNECTIONS, durationSeconds: WARMUP, next });
  const measured = await measureRounds(
    [
      { name: CAPPED, app: capped, next },
      { name: DEFAULT, app: uncapped, next },
    ],
    { connections: CONNECTIONS, durationSeconds: DURATION, rounds: ROUNDS },
  );
  for (const [variant, r] of measured) {
    rows.push({
      bench: `batch of ${BATCH}`,
      variant,
      unit: 'req/s',
      rate: r.rps,
      p50Ms: r.p50,
      p99Ms: r.p99,
      extra: {
        'events/s': Math.round(r.rps * BATCH),
        errors: r.errors,
        'CPU ms/req': Number(r.cpuMsPerRequest.toFixed(3)),
        'RSS MB (most)': Math.round(r.rssMb),
      },
    });
  }
} finally {
  await Promise.all(apps.map((a) => a.stop()));
  await stack.dispose();
}

const row = (variant: string) => rows.find((r) => r.variant === variant);
await scenario.report(rows, [
  ratio('image heap flags: most RSS, MB', Number(row(CAPPED)?.extra?.['RSS MB (most)'] ?? NaN), {
    op: '<=',
    threshold: 250,
  }),
  ratio('image heap flags / no flags req/s', (row(CAPPED)?.rate ?? NaN) / (row(DEFAULT)?.rate ?? NaN), {
    op: '>=',
    threshold: 0.9,
  }),
  ratio('no flags: most RSS, MB', Number(row(DEFAULT)?.extra?.['RSS MB (most)'] ?? NaN)),
]);
