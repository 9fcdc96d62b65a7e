import { AppProcess, EventLoad, TestStack, scrapeMetrics, waitFor, waitForLagZero } from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Postgres' offset is below the log start (retention deleted events before they were applied) and Kafka's
 * committed offset is beyond the log start: the events from the log start up to Kafka's offset are still in the
 * log and must be applied. Only those between Postgres' offset and the log start are lost, and only they are
 * counted as lost. One partition; event i increments its own counter `<tag>-i`, so the rows say which were applied.
 */
describe('consumer resuming below the log start', () => {
  let stack: TestStack;
  let load: EventLoad;
  const port = () => Number(stack.env['CONSUMER_PORT']);
  const topics = () => [stack.topics.counters, stack.topics.activities];
  const tag = `gap${Date.now().toString(36)}`;
  const event = (i: number) => load.counterEvent(`${tag}-${i}`, 1);

  beforeAll(async () => {
    stack = await TestStack.create({ partitions: 1 });
    load = new EventLoad(stack.kafka, stack.topics);
    await load.connect();
  });
  afterAll(async () => {
    await load?.disconnect();
    await stack?.dispose();
  });

  it('applies everything still in the log and counts only the deleted range as lost', async () => {
    // Offsets 0-9 applied: Postgres' offset is 10.
    let consumer = new AppProcess('consumer', { ...stack.env, LOG_LEVEL: 'warn' });
    await consumer.ready(port());
    await load.send(Array.from({ length: 10 }, (_, i) => event(i)));
    await waitForLagZero(stack.kafka, stack.groupId, topics());
    await consumer.stop();

    // Offsets 10-29 written while no consumer runs; the group's offset moved to 25 from outside; retention
    // deleted everything below 20.
    await load.send(Array.from({ length: 20 }, (_, i) => event(10 + i)));
    const admin = stack.kafka.admin();
    await admin.connect();
    try {
      await admin.setOffsets({
        groupId: stack.groupId,
        topic: stack.topics.counters,
        partitions: [{ partition: 0, offset: '25' }],
      });
      await admin.deleteTopicRecords({ topic: stack.topics.counters, partitions: [{ partition: 0, offset: '20' }] });
      const [offsets] = await admin.fetchTopicOffsets(stack.topics.counters);
      expect([offsets?.low, offsets?.high]).toEqual(['20', '30']);
    } finally {
      await admin.disconnect();
    }

    consumer = new AppProcess('consumer', { ...stack.env, LOG_LEVEL: 'warn' });
    await consumer.ready(port());
    await waitFor(
      async () => {
        const [row] = await stack.query<{ next_offset: string }>(
          'SELECT next_offset FROM consumer_offsets WHERE group_id = $1 AND topic = $2 AND partition = 0',
          [stack.groupId, stack.topics.counters],
        );
        return Number(row?.next_offset) === 30;
      },
      { timeoutMs: 60_000, description: "Postgres' offset at the log end" },
    );
    await waitForLagZero(stack.kafka, stack.groupId, topics());

    const rows = await stack.query<{ name: string }>('SELECT name FROM counters ORDER BY name');
    const applied = rows.map((r) => Number(r.name.slice(tag.length + 1))).sort((a, b) => a - b);
    // 0-9 before, 20-29 now; 10-19 were deleted before being applied.
    expect(applied).toEqual([
      ...Array.from({ length: 10 }, (_, i) => i),
      ...Array.from({ length: 10 }, (_, i) => 20 + i),
    ]);

    const metrics = await scrapeMetrics(port());
    expect(metrics.sum('writebehind_consumer_events_lost_total', { topic: stack.topics.counters })).toBe(10);
    expect(metrics.sum('writebehind_consumer_offset_gaps_total', { outcome: 'lost' })).toBe(1);
    await consumer.stop();
  });
});
