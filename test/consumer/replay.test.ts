import { AppProcess, EventLoad, TestStack, scrapeMetrics, uniqueName, waitFor, waitForLagZero } from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

interface Snapshot {
  counters: { name: string; value: string; version: string }[];
  activities: number;
}

/**
 * G7: replaying a topic changes nothing already applied. Twice: into a new consumer group (no stored offsets: the
 * dedupe ledger and the activities' primary key catch every event), and into the same group reset to the earliest
 * offset after the ledger was pruned by the consumer's own schedule (the offsets stored in Postgres catch them).
 * Versions unchanged means not even a no-op upsert ran.
 */
describe('replaying the topics', () => {
  let stack: TestStack;
  let load: EventLoad;
  let consumer: AppProcess | undefined;
  const port = () => Number(stack.env['CONSUMER_PORT']);
  const topics = () => [stack.topics.counters, stack.topics.activities];

  const snapshot = async (): Promise<Snapshot> => ({
    counters: await stack.query('SELECT name, value, version FROM counters ORDER BY name'),
    activities: (await stack.query<{ n: number }>('SELECT count(*)::int AS n FROM activities'))[0]?.n ?? -1,
  });
  const start = async (env: Record<string, string> = {}) => {
    consumer = new AppProcess('consumer', { ...stack.env, LOG_LEVEL: 'warn', ...env });
    await consumer.ready(port());
    return consumer;
  };
  const stop = async () => {
    expect(await consumer?.stop()).toEqual({ code: 0, signal: null });
    consumer = undefined;
  };
  const messagesInTopics = async () => {
    const admin = stack.kafka.admin();
    await admin.connect();
    try {
      let total = 0;
      for (const topic of topics()) {
        for (const p of await admin.fetchTopicOffsets(topic)) total += Number(p.high) - Number(p.low);
      }
      return total;
    } finally {
      await admin.disconnect();
    }
  };

  let applied: Snapshot;

  beforeAll(async () => {
    stack = await TestStack.create();
    load = new EventLoad(stack.kafka, stack.topics);
    await load.connect();
    await load.produce(8000);
    await start();
    await waitForLagZero(stack.kafka, stack.groupId, topics());
    await stop();
    applied = await snapshot();
    const values = new Map(applied.counters.map((c) => [c.name, Number(c.value)]));
    for (const [name, value] of load.expectedCounters()) expect(values.get(name), name).toBe(value);
    expect(applied.activities).toBe(load.expectedActivityIds().length);
  });
  afterAll(async () => {
    await consumer?.stop();
    await load?.disconnect();
    await stack?.dispose();
  });

  it('into a new consumer group: the ledger and primary keys absorb every event', async () => {
    const groupId = uniqueName('replay');
    await start({ CONSUMER_GROUP_ID: groupId });
    await waitForLagZero(stack.kafka, groupId, topics());
    const metrics = await scrapeMetrics(port());
    expect(metrics.sum('writebehind_consumer_events_applied_total')).toBe(0);
    expect(metrics.sum('writebehind_consumer_events_deduplicated_total', { reason: 'id' })).toBe(
      await messagesInTopics(),
    );
    await stop();
    expect(await snapshot()).toEqual(applied);
    const admin = stack.kafka.admin();
    await admin.connect();
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect();
  });

  it('from the earliest offset after the ledger was pruned: the stored offsets absorb every event', async () => {
    // Age the whole ledger past the retention (10 days by default, which the topics' settings allow); the
    // consumer's pruning schedule deletes it.
    await stack.query("UPDATE processed_events SET applied_at = now() - interval '11 days'");
    const pruning = { CONSUMER_LEDGER_PRUNE_INTERVAL_MS: '1000' };
    await start(pruning);
    await waitFor(
      async () => (await stack.query<{ n: number }>('SELECT count(*)::int AS n FROM processed_events'))[0]?.n === 0,
      { description: 'the ledger pruned' },
    );
    expect((await scrapeMetrics(port())).sum('writebehind_consumer_ledger_pruned_total')).toBe(load.ackedCount);
    await stop();

    const admin = stack.kafka.admin();
    await admin.connect();
    try {
      for (const topic of topics()) await admin.resetOffsets({ groupId: stack.groupId, topic, earliest: true });
    } finally {
      await admin.disconnect();
    }
    await start(pruning);
    await waitForLagZero(stack.kafka, stack.groupId, topics());
    const metrics = await scrapeMetrics(port());
    expect(metrics.sum('writebehind_consumer_events_applied_total')).toBe(0);
    expect(metrics.sum('writebehind_consumer_events_deduplicated_total', { reason: 'offset' })).toBe(
      await messagesInTopics(),
    );
    await stop();
    expect(await snapshot()).toEqual(applied);
  });
});
