import { randomUUID } from 'node:crypto';
import { AppProcess, EventLoad, TestStack, consumerLag, scrapeMetrics, waitFor, waitForLagZero } from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The consumer's normal path against the real Kafka, Postgres and Redis: batched, aggregated, exactly-once-effect
 * apply of counters and activities, Kafka and Postgres offsets in step, the feed cache dropped, metrics, readiness
 * and a clean drain on SIGTERM.
 */
describe('persistence consumer', () => {
  let stack: TestStack;
  let load: EventLoad;
  let consumer: AppProcess;
  const port = () => Number(stack.env['CONSUMER_PORT']);
  const start = async (env: Record<string, string> = {}) => {
    consumer = new AppProcess('consumer', { ...stack.env, ...env });
    await consumer.ready(port());
    return consumer;
  };
  const counterValues = async () =>
    new Map(
      (await stack.query<{ name: string; value: string }>('SELECT name, value FROM counters')).map((r) => [
        r.name,
        Number(r.value),
      ]),
    );
  const topics = () => [stack.topics.counters, stack.topics.activities];

  beforeAll(async () => {
    stack = await TestStack.create();
    load = new EventLoad(stack.kafka, stack.topics);
    await load.connect();
  });
  afterAll(async () => {
    await consumer?.stop();
    await load?.disconnect();
    await stack?.dispose();
  });

  it('turns 10,000 increments of one key into a few upserts, each event once', async () => {
    // Produced before the consumer starts, so that they come in few fetches.
    const hot = `hot:${randomUUID()}`;
    const events = Array.from({ length: 10_000 }, (_, i) => load.counterEvent(hot, (i % 3) + 1));
    for (let i = 0; i < events.length; i += 1000) await load.send(events.slice(i, i + 1000));
    // The same 500 events again, at later offsets: a producer retry as the broker sees it.
    await load.send(events.slice(0, 500));

    await start({ CONSUMER_BATCH_MAX_EVENTS: '20000', CONSUMER_BATCH_MAX_BYTES: '8388608' });
    await waitForLagZero(stack.kafka, stack.groupId, topics());

    const [row] = await stack.query<{ value: string }>('SELECT value FROM counters WHERE name = $1', [hot]);
    expect(Number(row?.value)).toBe(load.expectedCounters().get(hot));
    // One upsert of the counter per transaction (batch): the 10,000 came in a handful of batches.
    const metrics = await scrapeMetrics(port());
    expect(
      metrics.sum('writebehind_consumer_batch_events_count', { topic: stack.topics.counters }),
    ).toBeLessThanOrEqual(5);
    const ledger = await stack.query<{ n: number }>('SELECT count(*)::int AS n FROM processed_events');
    expect(ledger[0]?.n).toBe(10_000);
  });

  it('applies a mixed load exactly once and keeps Kafka and Postgres offsets in step', async () => {
    await load.produce(6000);
    await waitForLagZero(stack.kafka, stack.groupId, topics());

    const values = await counterValues();
    for (const [name, expected] of load.expectedCounters()) expect(values.get(name), name).toBe(expected);
    const activities = await stack.query<{ id: string }>('SELECT id FROM activities ORDER BY id');
    expect(activities.map((a) => a.id)).toEqual(load.expectedActivityIds());

    // The offset stored in Postgres is where Kafka's committed offset is, for every partition that had records.
    const stored = await stack.query<{ topic: string; partition: number; next_offset: string }>(
      'SELECT topic, partition, next_offset FROM consumer_offsets WHERE group_id = $1',
      [stack.groupId],
    );
    const lags = await consumerLag(stack.kafka, stack.groupId, topics());
    for (const lag of lags.filter((l) => l.high > 0)) {
      const row = stored.find((s) => s.topic === lag.topic && s.partition === lag.partition);
      expect(Number(row?.next_offset), `${lag.topic}/${lag.partition}`).toBe(lag.high);
    }
  });

  it('applies a single event promptly when traffic is light', async () => {
    const name = `quiet:${randomUUID()}`;
    await load.send([load.counterEvent(name, 42)]);
    await waitFor(async () => (await counterValues()).get(name) === 42, { description: 'the lone event applied' });
  });

  it("drops the cached feed page of an actor who got a new activity, and only that one's", async () => {
    const [actor, other] = [`feed-${randomUUID()}`, `feed-${randomUUID()}`];
    const key = (a: string) => `${stack.keyPrefix}feed:${a}`;
    await stack.redis.set(key(actor), '[]');
    await stack.redis.set(key(other), '[]');
    const activity = load.activityEvent(actor);
    await load.send([activity]);
    await waitFor(
      async () => (await stack.query('SELECT 1 FROM activities WHERE id = $1', [activity.id])).length === 1,
      { description: 'the activity applied' },
    );
    await waitFor(async () => (await stack.redis.exists(key(actor))) === 0, { description: 'the feed page dropped' });
    expect(await stack.redis.exists(key(other))).toBe(1);
  });

  it('reports what it did in /metrics and is ready', async () => {
    const metrics = await scrapeMetrics(port());
    const counters = { topic: stack.topics.counters };
    const appliedEvents = load.ackedCount;
    expect(metrics.sum('writebehind_consumer_events_applied_total', counters)).toBe(appliedEvents);
    expect(
      metrics.sum('writebehind_consumer_events_deduplicated_total', { ...counters, reason: 'id' }),
    ).toBeGreaterThan(0);
    expect(metrics.sum('writebehind_consumer_end_to_end_latency_seconds_count', counters)).toBe(appliedEvents);
    expect(metrics.sum('writebehind_consumer_batch_events_sum', counters)).toBeGreaterThanOrEqual(appliedEvents);
    expect(metrics.sum('writebehind_consumer_batch_duration_seconds_count', counters)).toBeGreaterThan(0);
    expect(metrics.sum('writebehind_consumer_last_commit_timestamp_seconds', counters)).toBeGreaterThan(0);
    expect(metrics.sum('writebehind_consumer_dead_letters_total')).toBe(0);
    expect(metrics.sum('writebehind_consumer_retrying_partitions')).toBe(0);

    const ready = await fetch(`http://127.0.0.1:${port()}/health/ready`);
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as { info: Record<string, { status: string }> };
    expect(Object.keys(body.info).sort()).toEqual(['kafka', 'postgres', 'redis']);
  });

  it('drains on SIGTERM under load, exits 0, and a restart loses and repeats nothing', async () => {
    load.start();
    await waitFor(async () => (await scrapeMetrics(port())).sum('writebehind_consumer_events_applied_total') > 0);
    const exit = await consumer.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(consumer.text).toContain('stopped cleanly');

    await start();
    await load.stop();
    await waitForLagZero(stack.kafka, stack.groupId, topics());
    const values = await counterValues();
    for (const [name, expected] of load.expectedCounters()) expect(values.get(name), name).toBe(expected);
    const activities = await stack.query<{ n: number }>('SELECT count(*)::int AS n FROM activities');
    expect(activities[0]?.n).toBe(load.expectedActivityIds().length);
  });
});
