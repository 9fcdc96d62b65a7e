import { TestStack, waitFor } from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * kafkajs 2.2.4 against the real Kafka 4.x broker (KIP-896 removed old protocol versions): produce with the
 * idempotent acks=all producer, consume in a group with manual commits, and the admin calls we rely on.
 */
describe('kafkajs against the real broker', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await TestStack.create();
  });
  afterAll(async () => {
    await stack.dispose();
  });

  it('produces, consumes in a group, commits offsets and reads them back through admin', async () => {
    const topic = stack.topics.counters;
    const producer = stack.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const keys = ['a', 'b', 'c', 'd', 'e', 'f'];
    const acks = await producer.sendBatch({
      acks: -1,
      topicMessages: [{ topic, messages: keys.map((key) => ({ key, value: `value-${key}` })) }],
    });
    await producer.disconnect();
    expect(acks.every((r) => r.errorCode === 0)).toBe(true);

    const consumer = stack.kafka.consumer({ groupId: stack.groupId });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const seen = new Map<string, string>();
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async (payload) => {
        const { batch } = payload;
        for (const message of batch.messages) {
          seen.set(message.key?.toString() ?? '', message.value?.toString() ?? '');
          payload.resolveOffset(message.offset);
        }
        await consumer.commitOffsets([
          { topic, partition: batch.partition, offset: (BigInt(batch.lastOffset()) + 1n).toString() },
        ]);
        await payload.heartbeat();
      },
    });
    await waitFor(() => seen.size === keys.length, { description: 'all messages consumed' });
    await consumer.disconnect();

    expect([...seen.keys()].sort()).toEqual(keys);
    expect(seen.get('c')).toBe('value-c');

    const admin = stack.kafka.admin();
    await admin.connect();
    try {
      const [committed] = await admin.fetchOffsets({ groupId: stack.groupId, topics: [topic] });
      const ends = await admin.fetchTopicOffsets(topic);
      // Every partition's committed offset is its end offset: the group consumed and committed everything.
      for (const end of ends) {
        const partition = committed?.partitions.find((p) => p.partition === end.partition);
        expect(partition?.offset === '-1' ? '0' : partition?.offset).toBe(end.high);
      }
      expect(ends.reduce((sum, p) => sum + Number(p.high), 0)).toBe(keys.length);
      const groups = await admin.describeGroups([stack.groupId]);
      expect(groups.groups[0]?.state).toBe('Empty');
      const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
      expect(metadata.topics[0]?.partitions).toHaveLength(3);
    } finally {
      await admin.disconnect();
    }
  });
});
