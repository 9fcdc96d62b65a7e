import type { INestApplicationContext } from '@nestjs/common';
import { KafkaProducer, createTopicsAndWait } from '@app/kafka';
import { TestStack, createTestContext, uniqueName } from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * kafkajs rolls back the sequence numbers of every partition of a produce request that failed, also of the partitions
 * whose records the broker appended. The next batch of the same size to such a partition carries a sequence range the
 * broker has already seen, so it is taken for a retried duplicate and acknowledged without being written: an
 * acknowledged write lost. Here one request goes to a topic that takes it and to one that refuses it (max.message.bytes
 * 1); then one more record goes to the first topic, and it must be there.
 */
describe('KafkaProducer after a request that failed on one partition only', () => {
  let stack: TestStack;
  let context: INestApplicationContext;
  const refusing = uniqueName('refusing');

  beforeAll(async () => {
    stack = await TestStack.create({ partitions: 1 });
    const admin = stack.kafka.admin();
    await admin.connect();
    try {
      await createTopicsAndWait(admin, [
        { topic: refusing, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '1' }] },
      ]);
    } finally {
      await admin.disconnect();
    }
    context = await createTestContext(stack.env);
  });
  afterAll(async () => {
    await context?.close();
    const admin = stack.kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [refusing] }).catch(() => undefined);
    await admin.disconnect();
    await stack?.dispose();
  });

  it('writes every record it acknowledges', async () => {
    const producer = context.get(KafkaProducer);
    const topic = stack.topics.counters;
    await producer.sendBatch([{ topic, messages: [{ value: 'first' }] }]);
    await expect(
      producer.sendBatch([
        { topic, messages: [{ value: 'second' }] },
        { topic: refusing, messages: [{ value: 'refused' }] },
      ]),
    ).rejects.toThrow(/larger than the max message size/);
    const [acknowledged] = await producer.sendBatch([{ topic, messages: [{ value: 'third' }] }]);

    const admin = stack.kafka.admin();
    await admin.connect();
    try {
      const [log] = await admin.fetchTopicOffsets(topic);
      // first, second (appended although its request failed) and third.
      expect(Number(log?.high)).toBe(3);
      expect(acknowledged?.baseOffset).toBe('2');
    } finally {
      await admin.disconnect();
    }
  });
});
