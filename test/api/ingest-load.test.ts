import { AppProcess, TestStack, readEvents } from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CLIENTS = 50;
const PER_CLIENT = 200;

/**
 * 10,000 increments from 50 concurrent clients, one in ten sent again with the same key: Kafka carries each
 * key once, every repeat gets the first answer, and every GET right after a 2xx includes that write.
 * Each client owns a counter, so "includes" is exact: the GET equals the client's own running total. A shared
 * hot counter takes every write too, checked at the end.
 */
describe('ingestion under concurrent load', () => {
  let stack: TestStack;
  let api: AppProcess;
  let base: string;

  beforeAll(async () => {
    stack = await TestStack.create();
    api = new AppProcess('api', { ...stack.env, LOG_LEVEL: 'warn' });
    const port = Number(stack.env['API_PORT']);
    await api.ready(port);
    base = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    await api.stop();
    await stack.dispose();
  });

  const post = async (name: string, by: number, key: string) => {
    const response = await fetch(`${base}/v1/counters/${name}/increment`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify({ by }),
    });
    return {
      status: response.status,
      body: (await response.json()) as { value: number; eventId: string; mode: string },
    };
  };
  const get = async (name: string) =>
    ((await (await fetch(`${base}/v1/counters/${name}`)).json()) as { value: number }).value;

  it('keeps every key once in Kafka and serves read-your-writes', async () => {
    const readYourWrites: { expected: number; got: number }[] = [];
    const replays: { first: unknown; again: unknown; status: number }[] = [];
    let hotTotal = 0;

    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, client) => {
        const name = `load:client-${client}`;
        let total = 0;
        for (let i = 0; i < PER_CLIENT; i++) {
          const by = 1 + ((client * 7 + i) % 5);
          const key = `c${client}-${i}`;
          const first = await post(name, by, key);
          expect(first.status).toBe(202);
          total += by;
          readYourWrites.push({ expected: total, got: await get(name) });
          if (i % 10 === 0) {
            const again = await post(name, by, key);
            replays.push({ first: first.body, again: again.body, status: again.status });
          }
          if (i % 4 === 0) {
            const hot = await post('load:hot', 1, `hot-${key}`);
            expect(hot.status).toBe(202);
            hotTotal += 1;
          }
        }
      }),
    );

    expect(readYourWrites).toHaveLength(CLIENTS * PER_CLIENT);
    expect(readYourWrites.filter((r) => r.got !== r.expected)).toEqual([]);
    expect(replays).toHaveLength(CLIENTS * (PER_CLIENT / 10));
    expect(replays.filter((r) => r.status !== 202 || JSON.stringify(r.first) !== JSON.stringify(r.again))).toEqual([]);
    expect(await get('load:hot')).toBe(hotTotal);

    const events = await readEvents(stack.kafka, stack.topics.counters);
    const ids = events.map((e) => e.event.id);
    expect(ids).toHaveLength(CLIENTS * PER_CLIENT + hotTotal);
    expect(new Set(ids).size).toBe(ids.length);
    // Keyed by counter name: each counter's events are in one partition, alone or in envelopes of that partition.
    const partitionsByCounter = new Map<string, Set<number>>();
    for (const e of events) {
      partitionsByCounter.set(e.event.key, (partitionsByCounter.get(e.event.key) ?? new Set()).add(e.partition));
    }
    expect([...partitionsByCounter.values()].every((p) => p.size === 1)).toBe(true);
  });
});
