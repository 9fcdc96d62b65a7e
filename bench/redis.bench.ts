// The Redis view's scripts (libs/counter-view): the write script (add a pending delta, WRITE) and the read script,
// run through ioredis by the built CounterViewRepository exactly as the apps run them (EVALSHA on one connection,
// CONCURRENCY commands in flight), against redis-benchmark running the same scripts with the same arguments and key
// space on the same server: with as many connections as ioredis has commands in flight, and with one connection
// pipelining that many. Keys live under the benchmark's own prefix and are deleted afterwards.
// Run: npm run bench -- redis   (REQUESTS=200000 CONCURRENCY=50 KEYSPACE=100000)
import { spawnSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { type Row, Scenario, ratio } from './lib/report.ts';
import { BenchStack, envNumber, importBuilt, shared } from './lib/stack.ts';

const REQUESTS = envNumber('REQUESTS', 200_000);
const CONCURRENCY = envNumber('CONCURRENCY', 50);
const KEYSPACE = envNumber('KEYSPACE', 100_000);
const PENDING_TTL_MS = 600_000;
const ACCEPTED_AT = 1_764_000_000_000;

const scenario = new Scenario(
  'redis',
  `Redis view scripts: ioredis (as the apps run them) vs redis-benchmark (${REQUESTS.toLocaleString('en-US')} calls each)`,
  { REQUESTS, CONCURRENCY, KEYSPACE },
  ['REQUESTS', 'CONCURRENCY', 'KEYSPACE'],
);

type Reply = unknown;
interface ViewRepository {
  write(
    name: string,
    entry: { eventId: string; delta: number; acceptedAt: number },
    options: { pendingTtlMs: number; maxAbs: number },
  ): Promise<Reply>;
  read(name: string): Promise<Reply>;
}
interface Scripts {
  WRITE: string;
  READ: string;
}

/** redis-benchmark's `__rand_int__`: a 12-digit number below KEYSPACE, drawn anew at every occurrence. */
const randInt = () => String(Math.floor(Math.random() * KEYSPACE)).padStart(12, '0');

const rows: Row[] = [];
const stack = await BenchStack.create(12, { migrate: false });
const prefix = stack.env['REDIS_KEY_PREFIX'] ?? '';
const redis = new Redis(shared.REDIS_URL, { keyPrefix: prefix });
try {
  const { CounterViewRepository } = await importBuilt<{
    CounterViewRepository: new (client: { redis: Redis; isCluster: boolean }) => ViewRepository;
  }>('api', 'libs/counter-view/src/index.js');
  const scripts = await importBuilt<Scripts>('api', 'libs/counter-view/src/counter-view.scripts.js');
  const view = new CounterViewRepository({ redis, isCluster: false });

  async function viaIoredis(call: () => Promise<Reply>) {
    const latencies: number[] = [];
    let issued = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (issued < REQUESTS) {
          issued++;
          const t = performance.now();
          await call();
          latencies.push(performance.now() - t);
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
    return { rate: latencies.length / seconds, p50: at(0.5), p99: at(0.99) };
  }

  function viaRedisBenchmark(args: string[], clients: number, pipeline: number) {
    const url = new URL(shared.REDIS_URL);
    const run = spawnSync(
      'redis-benchmark',
      [
        '-h',
        url.hostname,
        '-p',
        url.port || '6379',
        '-c',
        String(clients),
        '-P',
        String(pipeline),
        '-n',
        String(REQUESTS),
      ].concat(['-r', String(KEYSPACE), '--csv', ...args]),
      { encoding: 'utf8' },
    );
    if (run.status !== 0) throw new Error(`redis-benchmark failed: ${run.stderr || run.error?.message}`);
    const line = run.stdout.trim().split('\n').at(-1) ?? '';
    const fields = line.split('","').map((f) => f.replaceAll('"', ''));
    return { rate: Number(fields[1]), p50: Number(fields[4]), p99: Number(fields[6]) };
  }

  const sha = {
    write: String(await redis.script('LOAD', scripts.WRITE)),
    read: String(await redis.script('LOAD', scripts.READ)),
  };
  const keys = [`${prefix}{c:__rand_int__}:base`, `${prefix}{c:__rand_int__}:pending`];
  const cases = [
    {
      bench: 'write script (add pending)',
      ioredis: () =>
        view.write(
          randInt(),
          { eventId: randInt(), delta: 1, acceptedAt: ACCEPTED_AT },
          { pendingTtlMs: PENDING_TTL_MS, maxAbs: Number.MAX_SAFE_INTEGER },
        ),
      args: [
        'EVALSHA',
        sha.write,
        '2',
        ...keys,
        '__rand_int__',
        '1',
        String(ACCEPTED_AT),
        String(PENDING_TTL_MS),
        String(Number.MAX_SAFE_INTEGER),
      ],
    },
    { bench: 'read script', ioredis: () => view.read(randInt()), args: ['EVALSHA', sha.read, '2', ...keys] },
  ];
  const redisBenchmark = spawnSync('redis-benchmark', ['--version'], { encoding: 'utf8' });
  for (const c of cases) {
    await viaIoredis(c.ioredis); // warm-up (and the keys exist for the read)
    const io = await viaIoredis(c.ioredis);
    rows.push({
      bench: c.bench,
      variant: `ioredis, 1 connection, ${CONCURRENCY} in flight`,
      unit: 'calls/s',
      rate: io.rate,
      p50Ms: io.p50,
      p99Ms: io.p99,
    });
    if (redisBenchmark.status !== 0) continue;
    for (const [clients, pipeline] of [
      [CONCURRENCY, 1],
      [1, CONCURRENCY],
    ] as const) {
      const rb = viaRedisBenchmark(c.args, clients, pipeline);
      rows.push({
        bench: c.bench,
        variant: `redis-benchmark, ${clients} connection${clients === 1 ? '' : 's'}${pipeline > 1 ? `, pipeline ${pipeline}` : ''}`,
        unit: 'calls/s',
        rate: rb.rate,
        p50Ms: rb.p50,
        p99Ms: rb.p99,
      });
    }
  }
} finally {
  redis.disconnect();
  await stack.dispose();
}

const rate = (bench: string, prefixOfVariant: string) =>
  rows.find((r) => r.bench === bench && r.variant.startsWith(prefixOfVariant))?.rate ?? NaN;
await scenario.report(
  rows,
  ['write script (add pending)', 'read script'].flatMap((bench) => [
    ratio(
      `${bench}: ioredis / redis-benchmark ${CONCURRENCY} connections`,
      rate(bench, 'ioredis') / rate(bench, `redis-benchmark, ${CONCURRENCY}`),
    ),
    ratio(`${bench}: ioredis / redis-benchmark pipelined`, rate(bench, 'ioredis') / rate(bench, 'redis-benchmark, 1 ')),
  ]),
);
