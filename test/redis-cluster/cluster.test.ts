import type { INestApplicationContext } from '@nestjs/common';
import { loadConfig } from '@app/config';
import { CounterView, CounterViewModule } from '@app/counter-view';
import { Database } from '@app/db';
import { counterFingerprint } from '@app/events';
import { type Claim, IdempotencyModule, IdempotencyService, holding, idempotencyKey } from '@app/idempotency';
import { CounterRepository, StoreModule } from '@app/store';
import {
  AppProcess,
  RedisCluster,
  RedisServer,
  TestStack,
  addPending,
  createTestContext,
  scrapeMetrics,
} from '@app/testing';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const KEY = 'cluster-test-key-0123456789';
const CLIENT = 'client-a';

/** One deployment under test: a TestStack (topics, schema, key prefix), an API process and an in-process context. */
interface Run {
  name: 'cluster' | 'single';
  stack: TestStack;
  api: AppProcess;
  port: number;
  context: INestApplicationContext;
  /** A plain connection (no key prefix) to the same Redis, to plant records as another API process would. */
  raw: Redis | Cluster;
  /** SCRIPT FLUSH on every server, as after a Redis restart. */
  scriptFlush: () => Promise<void>;
}

async function startRun(
  name: Run['name'],
  redisEnv: Record<string, string>,
  raw: Redis | Cluster,
  scriptFlush: () => Promise<void>,
): Promise<Run> {
  const stack = await TestStack.create();
  const env: Record<string, string> = {
    ...stack.env,
    ...redisEnv,
    API_KEYS: `${KEY}:${CLIENT}`,
    // Activities straight to Postgres (no consumer runs here), so that the feed has something to cache.
    API_WRITE_MODE_ACTIVITIES: 'write-through',
    // Long enough that the second read of a feed is a hit whatever the machine's speed.
    API_FEED_CACHE_TTL_MS: '600000',
  };
  const api = new AppProcess('api', env);
  const port = Number(env['API_PORT']);
  await api.ready(port);
  const context = await createTestContext(env, [StoreModule, CounterViewModule, IdempotencyModule]);
  return { name, stack, api, port, context, raw, scriptFlush };
}

async function stopRun(run: Run | undefined): Promise<void> {
  if (!run) return;
  await run.api.stop();
  await run.context.close();
  await run.stack.dispose();
  run.raw.disconnect();
}

/**
 * The same requests against one deployment; returns what it answered (statuses and bodies), which must not
 * depend on whether Redis is one server or a cluster. Nothing in it is random: every write has a key or an id.
 */
async function scenario(run: Run): Promise<Record<string, unknown>> {
  const base = `http://127.0.0.1:${run.port}`;
  const send = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { 'x-api-key': KEY, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: await response.json() };
  };
  const out: Record<string, unknown> = {};

  // Single increments, two per counter, each under its own Idempotency-Key.
  for (let i = 0; i < 8; i++) {
    for (let j = 1; j <= 2; j++) {
      out[`increment page:${i} #${j}`] = await send(
        'POST',
        `/v1/counters/page:${i}/increment`,
        { by: i + j },
        { 'idempotency-key': `p-${i}-${j}` },
      );
    }
  }
  out['replay'] = await send('POST', '/v1/counters/page:0/increment', { by: 1 }, { 'idempotency-key': 'p-0-1' });
  out['same key, other body'] = (
    await send('POST', '/v1/counters/page:0/increment', { by: 7 }, { 'idempotency-key': 'p-0-1' })
  ).status;
  // A key held by a request in another API process: its in-flight record, as that process wrote it.
  await run.raw.set(
    `${run.stack.keyPrefix}${idempotencyKey(CLIENT, 'k-409')}`,
    holding(counterFingerprint('page:1', 5)),
    'PX',
    60_000,
  );
  out['key in flight'] = (
    await send('POST', '/v1/counters/page:1/increment', { by: 5 }, { 'idempotency-key': 'k-409' })
  ).status;

  // A batch over 150 counters (keys on every master), then the same batch again, then one that reuses ids.
  const items = Array.from({ length: 300 }, (_, i) => ({ name: `batch:${i % 150}`, by: (i % 7) + 1, id: `b-${i}` }));
  out['batch'] = await send('POST', '/v1/counters/batch', { increments: items });
  out['batch again'] = await send('POST', '/v1/counters/batch', { increments: items });
  out['batch reusing ids'] = await send('POST', '/v1/counters/batch', {
    increments: [
      ...items.slice(0, 10).map((item) => ({ ...item, by: item.by + 100 })),
      ...Array.from({ length: 10 }, (_, i) => ({ name: `batch:${i}`, by: 1, id: `b-new-${i}` })),
    ],
  });

  // Read-your-writes: every counter includes what was accepted.
  const names = [
    ...Array.from({ length: 8 }, (_, i) => `page:${i}`),
    ...Array.from({ length: 150 }, (_, i) => `batch:${i}`),
  ];
  const values: Record<string, unknown> = {};
  for (const name of names) values[name] = (await send('GET', `/v1/counters/${name}`)).body;
  out['values'] = values;

  // The actor feed, cache-aside: a miss fills it, the next read is a hit, a write drops it.
  const activity = (n: number, actor: string) => ({
    id: `${actor}-${n}`,
    actor,
    verb: 'liked',
    object: `post:${n}`,
    occurredAt: new Date(Date.UTC(2026, 0, 1, 0, n)).toISOString(),
  });
  for (const actor of ['alice', 'bob', 'carol']) {
    out[`activities of ${actor}`] = await send('POST', '/v1/activities/batch', {
      activities: [1, 2, 3].map((n) => activity(n, actor)),
    });
    out[`feed of ${actor} (miss)`] = await send('GET', `/v1/actors/${actor}/activities?limit=10`);
    out[`feed of ${actor} (hit)`] = await send('GET', `/v1/actors/${actor}/activities?limit=10`);
  }
  out['one more activity'] = await send('POST', '/v1/activities', activity(4, 'alice'));
  out['feed after a write'] = await send('GET', '/v1/actors/alice/activities?limit=10');
  const metrics = await scrapeMetrics(run.port);
  out['feed cache'] = {
    hit: metrics.sum('writebehind_cache_requests_total', { cache: 'feed', result: 'hit' }),
    miss: metrics.sum('writebehind_cache_requests_total', { cache: 'feed', result: 'miss' }),
    error: metrics.sum('writebehind_cache_requests_total', { cache: 'feed', result: 'error' }),
  };
  out['counter view errors'] = metrics.sum('writebehind_cache_requests_total', {
    cache: 'counter-view',
    result: 'error',
  });
  return out;
}

/** The counter view's scripts and the idempotency records, in process, through the libraries' own services. */
async function libraryScenario(run: Run): Promise<Record<string, unknown>> {
  const view = run.context.get(CounterView);
  const counters = run.context.get(CounterRepository);
  const database = run.context.get(Database);
  const idempotency = run.context.get(IdempotencyService);
  const out: Record<string, unknown> = {};
  const now = Date.now();

  const names = Array.from({ length: 30 }, (_, i) => `view:${i}`);
  await view.writeMany(names.map((name, i) => ({ name, entry: { eventId: `v-${i}`, delta: i + 1, acceptedAt: now } })));
  out['pending added'] = await Promise.all(names.map((name) => view.value(name)));
  out['a repeated id'] = await addPending(view, 'view:0', { eventId: 'v-0', delta: 1, acceptedAt: now });
  // Half of them applied in Postgres (as the consumer does), then reconciled; one taken back (a failed send).
  const applied = names.slice(0, 15).map((name, i) => ({ eventId: `v-${i}`, name, by: i + 1 }));
  const result = await database.db.tx((t) => counters.applyIncrements(t, applied, 'consumer'));
  out['reconciled'] = Object.fromEntries(await view.reconcile(applied, result.changed));
  await view.removePending('view:20', ['v-20']);
  // After SCRIPT FLUSH every script must still run (EVALSHA falls back to EVAL on each node).
  await run.scriptFlush();
  out['after SCRIPT FLUSH'] = await Promise.all(names.map((name) => view.value(name)));
  out['added after SCRIPT FLUSH'] = await addPending(view, 'view:29', { eventId: 'v-29b', delta: 5, acceptedAt: now });

  const entries = Array.from({ length: 60 }, (_, i) => ({ key: `i-${i}`, fingerprint: `f-${i}` }));
  const kinds = (claims: Claim[]) => claims.map((c) => (c.kind === 'replay' ? `replay ${c.status} ${c.body}` : c.kind));
  const heldBy = (claims: Claim[]) => claims.map((c) => (c.kind === 'claimed' ? c.held : undefined));
  const first = heldBy(await idempotency.claim(CLIENT, entries));
  out['claim'] = first.map((held) => held !== undefined);
  out['claim again'] = kinds(await idempotency.claim(CLIENT, entries));
  await idempotency.release(first.slice(0, 30).flatMap((held) => (held ? [held] : [])));
  const second = heldBy(await idempotency.claim(CLIENT, entries));
  out['claim after release'] = second.map((held) => held !== undefined);
  // A request whose lease ran out and whose key was taken again cannot free it nor store its answer over it.
  await idempotency.release(first.slice(0, 1).flatMap((held) => (held ? [held] : [])));
  await idempotency.complete(
    first.slice(0, 1).flatMap((held) => (held ? [{ held, fingerprint: 'f-0', status: 200, body: '"stale"' }] : [])),
  );
  out['key 0 after a stale owner tried'] = kinds(await idempotency.claim(CLIENT, entries.slice(0, 1)));
  await idempotency.complete(
    entries.flatMap((e, i) => {
      const held = i < 30 ? second[i] : first[i];
      return held ? [{ held, fingerprint: e.fingerprint, status: 200, body: JSON.stringify(e.key) }] : [];
    }),
  );
  out['claim after complete'] = kinds(await idempotency.claim(CLIENT, entries));
  return out;
}

describe('Redis Cluster: the API and the Redis view on three masters', () => {
  let cluster: RedisCluster;
  let single: RedisServer;
  let onCluster: Run | undefined;
  let onSingle: Run | undefined;
  let clusterTranscript: Record<string, unknown>;
  let singleTranscript: Record<string, unknown>;

  beforeAll(async () => {
    [cluster, single] = await Promise.all([RedisCluster.start(), RedisServer.start()]);
    const clusterRaw = new Cluster(
      cluster.ports.map((port) => ({ host: '127.0.0.1', port })),
      { redisOptions: { maxRetriesPerRequest: 1 } },
    );
    const singleRaw = new Redis(single.url, { maxRetriesPerRequest: 1 });
    const started = await Promise.allSettled([
      startRun('cluster', { REDIS_URL: cluster.url, REDIS_CLUSTER_NODES: cluster.nodesEnv }, clusterRaw, async () => {
        await Promise.all(cluster.ports.map((port) => cluster.client(port).script('FLUSH')));
      }),
      startRun('single', { REDIS_URL: single.url }, singleRaw, async () => {
        await singleRaw.script('FLUSH');
      }),
    ]);
    // Keep what did start, so that afterAll stops it, then fail with the first reason.
    [onCluster, onSingle] = started.map((s) => (s.status === 'fulfilled' ? s.value : undefined));
    for (const s of started) if (s.status === 'rejected') throw s.reason;
  });
  afterAll(async () => {
    await Promise.all([stopRun(onCluster), stopRun(onSingle)]);
    await Promise.all([cluster?.dispose(), single?.dispose()]);
  });

  it('parses REDIS_CLUSTER_NODES, and an empty value means a single server', () => {
    expect(loadConfig({ REDIS_CLUSTER_NODES: ' redis-0:6379, 10.0.0.2:7000 ,' }).redis.clusterNodes).toEqual([
      { host: 'redis-0', port: 6379 },
      { host: '10.0.0.2', port: 7000 },
    ]);
    expect(loadConfig({ REDIS_CLUSTER_NODES: '' }).redis.clusterNodes).toEqual([]);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'redis-0' })).toThrow(/REDIS_CLUSTER_NODES/);
  });

  it('serves increments, batches, replays, 409/422, read-your-writes and the feed cache on the cluster', async () => {
    if (!onCluster || !onSingle) throw new Error('not started');
    [clusterTranscript, singleTranscript] = [await scenario(onCluster), await scenario(onSingle)];
    const t = clusterTranscript;
    expect(t['increment page:3 #2']).toEqual({
      status: 202,
      body: {
        name: 'page:3',
        value: 4 + 5,
        eventId: `${CLIENT}:p-3-2#${counterFingerprint('page:3', 5)}`,
        mode: 'write-behind',
      },
    });
    expect(t['replay']).toEqual(t['increment page:0 #1']);
    expect(t['same key, other body']).toBe(422);
    expect(t['key in flight']).toBe(409);
    const batch = t['batch'] as { status: number; body: { accepted: number; results: { status: string }[] } };
    expect(batch.status).toBe(202);
    expect(batch.body.accepted).toBe(300);
    const again = t['batch again'] as typeof batch;
    expect(again.body.accepted).toBe(0);
    expect(new Set(again.body.results.map((r) => r.status))).toEqual(new Set(['duplicate']));
    const mixed = t['batch reusing ids'] as typeof batch;
    expect(mixed.body.results.map((r) => r.status)).toEqual([
      ...Array<string>(10).fill('conflict'),
      ...Array<string>(10).fill('accepted'),
    ]);
    const values = t['values'] as Record<string, { value: number }>;
    expect(values['page:7']?.value).toBe(8 + 9);
    // batch:0 got b-0 (0 % 7 + 1 = 1) and b-150 (150 % 7 + 1 = 4), then b-new-0 (1).
    expect(values['batch:0']?.value).toBe(1 + 4 + 1);
    expect(t['feed of alice (hit)']).toEqual(t['feed of alice (miss)']);
    expect((t['feed after a write'] as { body: { items: unknown[] } }).body.items).toHaveLength(4);
    expect(t['feed cache']).toEqual({ hit: 3, miss: 4, error: 0 });
    expect(t['counter view errors']).toBe(0);
  });

  it('answers exactly what a single Redis server answers', () => {
    expect(clusterTranscript).toBeDefined();
    expect(clusterTranscript).toEqual(singleTranscript);
  });

  it('runs the counter view scripts and the idempotency records on the cluster as on one server', async () => {
    if (!onCluster || !onSingle) throw new Error('not started');
    const [viaCluster, viaSingle] = [await libraryScenario(onCluster), await libraryScenario(onSingle)];
    expect(viaCluster['pending added']).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(viaCluster['a repeated id']).toBe(1);
    expect(viaCluster['after SCRIPT FLUSH']).toEqual(Array.from({ length: 30 }, (_, i) => (i === 20 ? 0 : i + 1)));
    expect(viaCluster['added after SCRIPT FLUSH']).toBe(30 + 5);
    expect(viaCluster['claim']).toEqual(Array<boolean>(60).fill(true));
    expect(viaCluster['claim again']).toEqual(Array<string>(60).fill('in-flight'));
    expect(viaCluster['claim after release']).toEqual([
      ...Array<boolean>(30).fill(true),
      ...Array<boolean>(30).fill(false),
    ]);
    expect(viaCluster['key 0 after a stale owner tried']).toEqual(['in-flight']);
    expect(viaCluster['claim after complete']).toEqual(Array.from({ length: 60 }, (_, i) => `replay 200 "i-${i}"`));
    expect(viaCluster).toEqual(viaSingle);
  });

  it('spread the keys over every master', async () => {
    if (!onCluster) throw new Error('not started');
    const perMaster = await cluster.keysPerMaster(`${onCluster.stack.keyPrefix}*`);
    expect(
      [...perMaster.values()].every((n) => n > 0),
      JSON.stringify([...perMaster]),
    ).toBe(true);
    // The two keys of one counter share a slot, hence a master: `{c:<name>}` is their hash tag.
    const slot = async (key: string) =>
      Number(await cluster.client(cluster.ports[0] ?? 0).call('CLUSTER', 'KEYSLOT', key));
    const prefix = onCluster.stack.keyPrefix;
    expect(await slot(`${prefix}{c:page:1}:base`)).toBe(await slot(`${prefix}{c:page:1}:pending`));
  });

  it('needs pipelineGroups: ioredis refuses one pipeline over keys of several masters', async () => {
    if (!onCluster) throw new Error('not started');
    const pipeline = (onCluster.raw as Cluster).pipeline();
    for (let i = 0; i < 20; i++) pipeline.get(`spread-${i}`);
    await expect(pipeline.exec()).rejects.toThrow(/slot/);
  });
});
