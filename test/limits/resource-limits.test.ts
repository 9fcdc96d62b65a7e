import { readFileSync } from 'node:fs';
import {
  AppProcess,
  EventLoad,
  RedisServer,
  TestStack,
  freePort,
  scrapeMetrics,
  uniqueName,
  waitForLagZero,
} from '@app/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** V8's old space cap of the apps under test: work queued without bound would end them (out of memory). */
const HEAP_MIB = 96;
const NODE_ARGS = [`--max-old-space-size=${HEAP_MIB}`];

/** Resident memory of a process, from /proc (independent of the process answering anything). */
function rssBytes(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return Number(kb ?? 0) * 1024;
  } catch {
    return 0;
  }
}

interface Peaks {
  rss: number;
  postgres: number;
  redis: number;
  samples: number;
  /** Resident memory at each sample, in order. */
  rssSeries: number[];
}

/** The largest value of each third of a series: a bounded process levels off, a leak keeps climbing. */
function thirds(series: number[]): [number, number, number] {
  const size = Math.ceil(series.length / 3);
  const max = (part: number[]) => Math.max(0, ...part);
  return [max(series.slice(0, size)), max(series.slice(size, 2 * size)), max(series.slice(2 * size))];
}

/**
 * Samples, every 250 ms until stopped, what an app holds: its resident memory, its connections to Postgres as the
 * server counts them (`pg_stat_activity` by its application_name) and to Redis (`CLIENT LIST` by its connection
 * name, on the test's private Redis). Keeps the peaks.
 */
function sampleResources(stack: TestStack, redis: Redis, app: AppProcess, applicationName: string, redisName: string) {
  const peaks: Peaks = { rss: 0, postgres: 0, redis: 0, samples: 0, rssSeries: [] };
  let running = true;
  const loop = (async () => {
    while (running) {
      const [postgres, clients] = await Promise.all([
        stack.pg.query<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1', [
          applicationName,
        ]),
        redis.client('LIST') as Promise<string>,
      ]);
      const rss = rssBytes(app.pid);
      peaks.rss = Math.max(peaks.rss, rss);
      peaks.rssSeries.push(rss);
      peaks.postgres = Math.max(peaks.postgres, Number(postgres.rows[0]?.n ?? 0));
      peaks.redis = Math.max(
        peaks.redis,
        clients.split('\n').filter((line) => line.includes(` name=${redisName} `)).length,
      );
      peaks.samples += 1;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  })();
  return {
    peaks,
    stop: async () => {
      running = false;
      await loop;
      return peaks;
    },
  };
}

const MiB = 1024 * 1024;

/** The distinct error-level log lines of a process (message and error message), for failure messages. */
function errorLines(app: AppProcess): string[] {
  const seen = new Set<string>();
  for (const line of app.text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string } };
      if ((entry.level ?? 0) >= 50) seen.add(`${entry.msg ?? ''}: ${entry.err?.message ?? ''}`);
    } catch {
      // Not a log line.
    }
  }
  return [...seen];
}

/**
 * Issue 8, resource limits (docs/architecture.md, G6): under a sustained overload the API's and the consumer's memory stays
 * bounded (they run with V8's old space capped at 96 MiB, survive and keep answering), and their connections to
 * Postgres and Redis, counted by the servers, stay within the configured pool (DATABASE_POOL_MAX) and the one
 * Redis connection per process.
 */
describe('resource limits under sustained overload', () => {
  let redisServer: RedisServer;
  let stack: TestStack;
  let redis: Redis;

  beforeAll(async () => {
    redisServer = await RedisServer.start();
    stack = await TestStack.create({ redisUrl: redisServer.url });
    redis = new Redis(redisServer.url, { maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    redis?.disconnect();
    await stack?.dispose();
    await redisServer?.dispose();
  });

  it('the API answers an overload within its heap, its Postgres pool and one Redis connection', async () => {
    const POOL = 4;
    const MAX_IN_FLIGHT = 64;
    const applicationName = `${stack.id}-api`;
    const adminPort = await freePort();
    const api = new AppProcess(
      'api',
      {
        ...stack.env,
        LOG_LEVEL: 'warn',
        DATABASE_APPLICATION_NAME: applicationName,
        DATABASE_POOL_MAX: String(POOL),
        API_MAX_IN_FLIGHT: String(MAX_IN_FLIGHT),
        // Activities go to Postgres synchronously: the overload presses on the pool as well as on Kafka.
        API_WRITE_MODE_ACTIVITIES: 'write-through',
        API_RATE_LIMIT: '10000000',
        API_ADMIN_PORT: String(adminPort),
      },
      [],
      NODE_ARGS,
    );
    try {
      await api.ready(adminPort);
      const base = `http://127.0.0.1:${stack.env['API_PORT']}`;
      const rssBefore = rssBytes(api.pid);
      const sampler = sampleResources(stack, redis, api, applicationName, 'writebehind-api');
      const statuses = new Map<number, number>();
      const byKind: Record<string, Record<number, number>> = {};
      const KINDS = ['increment', 'increment', 'batch', 'read', 'activity'];
      const count = (kind: number, status: number) => {
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        const counts = (byKind[KINDS[kind] ?? 'other'] ??= {});
        counts[status] = (counts[status] ?? 0) + 1;
      };
      const liveLatencies: number[] = [];
      const deadline = Date.now() + 25_000;
      const run = uniqueName('o');

      // 250 clients, each sending its next request as soon as the last is answered, for 25 s: single and batch
      // increments (a batch is 500 items, ~20 KiB), reads of counters never cached (each a Postgres read), and
      // activities written through to Postgres. Far more than 64 writes in flight and 4 connections can serve.
      const client = async (c: number) => {
        for (let n = 0; Date.now() < deadline; n++) {
          const kind = (c + n) % 5;
          const request: [string, RequestInit?] =
            kind === 0 || kind === 1
              ? [
                  `${base}/v1/counters/o:${c % 50}/increment`,
                  {
                    method: 'POST',
                    headers: { 'content-type': 'application/json', 'idempotency-key': `${run}-${c}-${n}` },
                    body: JSON.stringify({ by: 1 }),
                  },
                ]
              : kind === 2
                ? [
                    `${base}/v1/counters/batch`,
                    {
                      method: 'POST',
                      headers: { 'content-type': 'application/json' },
                      body: JSON.stringify({
                        increments: Array.from({ length: 500 }, (_, i) => ({ name: `ob:${i % 100}`, by: 1 })),
                      }),
                    },
                  ]
                : kind === 3
                  ? [`${base}/v1/counters/cold:${run}:${c}:${n}`]
                  : [
                      `${base}/v1/activities`,
                      {
                        method: 'POST',
                        headers: { 'content-type': 'application/json' },
                        body: JSON.stringify({ actor: `oa-${c % 20}`, verb: 'viewed', object: `post:${n}` }),
                      },
                    ];
          try {
            const response = await fetch(request[0], { ...request[1], signal: AbortSignal.timeout(30_000) });
            await response.arrayBuffer();
            count(kind, response.status);
          } catch {
            count(kind, 0);
          }
        }
      };
      // Meanwhile, liveness on the admin port: the process keeps answering.
      const probe = (async () => {
        while (Date.now() < deadline) {
          const started = Date.now();
          const ok = await fetch(`http://127.0.0.1:${adminPort}/health/live`, { signal: AbortSignal.timeout(10_000) })
            .then((r) => r.status === 200)
            .catch(() => false);
          liveLatencies.push(ok ? Date.now() - started : Number.POSITIVE_INFINITY);
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
      })();
      await Promise.all([...Array.from({ length: 250 }, (_, c) => client(c)), probe]);
      const peaks = await sampler.stop();

      const rssThirdsMiB = thirds(peaks.rssSeries).map((b) => Math.round(b / MiB));
      const summary = JSON.stringify({
        statuses: Object.fromEntries(statuses),
        byKind,
        rssBeforeMiB: Math.round(rssBefore / MiB),
        rssThirdsMiB,
        postgres: peaks.postgres,
        redis: peaks.redis,
        samples: peaks.samples,
        liveMaxMs: Math.max(...liveLatencies),
        errors: errorLines(api),
        // A process that died: how, and the end of what it wrote (V8's out-of-memory report goes to stderr).
        ...(api.running ? {} : { exit: await api.exited, lastOutput: api.text.slice(-3000) }),
      });
      console.log(`API overload: ${summary}`);
      expect(api.running, summary).toBe(true);
      // It was an overload: requests were refused with 503 and Retry-After (writes past the in-flight bound, reads
      // and written-through activities that found no free Postgres connection in time), and work was still done.
      // How much got through depends on the machine's speed, so only that each kind of request got through.
      expect(statuses.get(503) ?? 0, summary).toBeGreaterThan(0);
      for (const kind of ['increment', 'batch', 'read', 'activity']) {
        const counts = byKind[kind] ?? {};
        expect((counts[200] ?? 0) + (counts[202] ?? 0), `${kind}: ${summary}`).toBeGreaterThan(0);
      }
      // Nothing else: no 500 (a read that found the pool busy used to be one), no dropped connection.
      expect(
        [...statuses.keys()].filter((s) => ![200, 202, 503].includes(s)),
        summary,
      ).toEqual([]);
      expect(liveLatencies.every(Number.isFinite), summary).toBe(true);
      // Bounded: the connections the servers saw, and the resident memory (heap capped at 96 MiB, plus code,
      // buffers and sockets).
      expect(peaks.postgres, summary).toBeLessThanOrEqual(POOL);
      expect(peaks.postgres, summary).toBeGreaterThan(0);
      expect(peaks.redis, summary).toBe(1);
      // Resident memory (heap capped at 96 MiB, plus code, young generation, buffers and sockets) levels off: no
      // climb from the middle third of the overload to the last (the first third is the warm-up: how far it rises
      // there depends on how fast the load ramps up), and a fixed ceiling.
      const [, middle, last] = thirds(peaks.rssSeries);
      expect(last - middle, summary).toBeLessThan(64 * MiB);
      expect(peaks.rss, summary).toBeLessThan(400 * MiB);

      // Afterwards it serves normally, and its heap is back within its cap.
      const after = await fetch(`${base}/v1/counters/after:${run}/increment`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ by: 1 }),
      });
      expect([200, 202]).toContain(after.status);
      const { sum } = await scrapeMetrics(adminPort);
      expect(sum('nodejs_heap_size_used_bytes'), summary).toBeLessThan(HEAP_MIB * MiB);
      expect(sum('writebehind_writes_in_flight')).toBe(0);
    } finally {
      await api.stop();
    }
  });

  it('the consumer drains a large backlog within its heap, its Postgres pool and one Redis connection', async () => {
    const POOL = 3;
    const applicationName = `${stack.id}-consumer`;
    // The backlog first: 150,000 events (counters, activities, duplicates) waiting in Kafka.
    const load = new EventLoad(stack.kafka, stack.topics, { batch: 2000, pauseMs: 0, counters: 500 });
    await load.connect();
    await load.produce(150_000);
    await load.disconnect();

    const consumer = new AppProcess(
      'consumer',
      {
        ...stack.env,
        LOG_LEVEL: 'warn',
        DATABASE_APPLICATION_NAME: applicationName,
        DATABASE_POOL_MAX: String(POOL),
      },
      [],
      NODE_ARGS,
    );
    try {
      await consumer.ready(Number(stack.env['CONSUMER_PORT']));
      const rssBefore = rssBytes(consumer.pid);
      const sampler = sampleResources(stack, redis, consumer, applicationName, 'writebehind-consumer');
      await waitForLagZero(stack.kafka, stack.groupId, [stack.topics.counters, stack.topics.activities], 240_000);
      const peaks = await sampler.stop();
      const summary = JSON.stringify({
        rssBeforeMiB: Math.round(rssBefore / MiB),
        rssThirdsMiB: thirds(peaks.rssSeries).map((b) => Math.round(b / MiB)),
        postgres: peaks.postgres,
        redis: peaks.redis,
        samples: peaks.samples,
      });

      console.log(`consumer backlog: ${summary}`);
      expect(consumer.running, summary).toBe(true);
      expect(peaks.postgres, summary).toBeLessThanOrEqual(POOL);
      expect(peaks.postgres, summary).toBeGreaterThan(0);
      expect(peaks.redis, summary).toBe(1);
      const [, middle, last] = thirds(peaks.rssSeries);
      expect(last - middle, summary).toBeLessThan(64 * MiB);
      expect(peaks.rss, summary).toBeLessThan(400 * MiB);
      // And it applied the backlog exactly once (G2).
      const expected = load.expectedCounters();
      const rows = await stack.query<{ name: string; value: string }>(
        'SELECT name, value FROM counters WHERE name = ANY($1)',
        [[...expected.keys()]],
      );
      const actual = new Map(rows.map((r) => [r.name, Number(r.value)]));
      expect([...expected].filter(([name, value]) => actual.get(name) !== value)).toEqual([]);
      const { sum } = await scrapeMetrics(Number(stack.env['CONSUMER_PORT']));
      expect(sum('nodejs_heap_size_used_bytes'), summary).toBeLessThan(HEAP_MIB * MiB);
    } finally {
      await consumer.stop();
    }
  });
});
