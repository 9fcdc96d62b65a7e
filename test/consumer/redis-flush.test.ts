import type { INestApplicationContext } from '@nestjs/common';
import { CounterView, CounterViewModule } from '@app/counter-view';
import {
  AppProcess,
  EventLoad,
  TestStack,
  addPending,
  createTestContext,
  scrapeMetrics,
  waitFor,
  waitForLagZero,
} from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * G4 after Redis lost its data: the load goes through the Redis view as the API's write path does (each delta is
 * added to pending before it is produced; duplicates are added again, as a client retry after a lost idempotency
 * record would), and midway every key of this test's prefix is deleted (never FLUSHALL: Redis is shared). Once the
 * consumer has caught up, every counter's served value equals Postgres, which equals the oracle, and no pending
 * delta is left behind.
 */
describe('Redis flushed under load', () => {
  let stack: TestStack;
  let context: INestApplicationContext;
  let view: CounterView;
  let load: EventLoad;
  let consumer: AppProcess;
  const port = () => Number(stack.env['CONSUMER_PORT']);

  async function flushPrefix(): Promise<number> {
    let deleted = 0;
    let cursor = '0';
    do {
      const [next, keys] = await stack.redis.scan(cursor, 'MATCH', `${stack.keyPrefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) deleted += await stack.redis.unlink(...keys);
    } while (cursor !== '0');
    return deleted;
  }

  beforeAll(async () => {
    stack = await TestStack.create();
    context = await createTestContext(stack.env, [CounterViewModule]);
    view = context.get(CounterView);
    load = new EventLoad(stack.kafka, stack.topics, {
      batch: 100,
      pauseMs: 25,
      beforeSend: async (events) => {
        await Promise.all(events.map((e) => addPending(view, e.key, { eventId: e.id, delta: e.by, acceptedAt: e.ts })));
      },
    });
    await load.connect();
    consumer = new AppProcess('consumer', { ...stack.env, LOG_LEVEL: 'warn' });
    await consumer.ready(port());
  });
  afterAll(async () => {
    await consumer?.stop();
    await load?.disconnect();
    await context?.close();
    await stack?.dispose();
  });

  it('serves Postgres values for every counter once the consumer caught up', async () => {
    load.start();
    const applied = () => scrapeMetrics(port()).then((m) => m.sum('writebehind_consumer_events_applied_total'));
    await waitFor(async () => (await applied()) > 3000, { description: 'load applied' });
    expect(await flushPrefix()).toBeGreaterThan(0);
    const afterFlush = await applied();
    await waitFor(async () => (await applied()) > afterFlush + 3000, {
      description: 'more load applied after the flush',
    });
    await load.stop();
    await waitForLagZero(stack.kafka, stack.groupId, [stack.topics.counters, stack.topics.activities]);

    const rows = await stack.query<{ name: string; value: string }>('SELECT name, value FROM counters');
    const postgres = new Map(rows.map((r) => [r.name, Number(r.value)]));
    const expected = load.expectedCounters();
    expect(new Set(postgres.keys())).toEqual(new Set(expected.keys()));
    for (const [name, value] of expected) {
      expect(postgres.get(name), name).toBe(value);
      expect(await view.value(name), name).toBe(value);
    }
    // Every accepted delta was applied and reconciled: nothing is left pending in the view.
    const pending = await Promise.all(
      load.counterNames.map((name) => stack.redis.hget(`${stack.keyPrefix}{c:${name}}:pending`, ' sum')),
    );
    expect(pending.filter((sum) => sum !== null && Number(sum) !== 0)).toEqual([]);
    expect((await scrapeMetrics(port())).sum('writebehind_consumer_redis_update_failures_total')).toBe(0);
  });
});
