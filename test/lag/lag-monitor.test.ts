import type { INestApplicationContext } from '@nestjs/common';
import { Database } from '@app/db';
import { LagModule, LagMonitor } from '@app/lag';
import { OffsetRepository } from '@app/store';
import { TestStack, createTestContext } from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe('LagMonitor', () => {
  let stack: TestStack;
  let app: INestApplicationContext;

  beforeAll(async () => {
    stack = await TestStack.create({ partitions: 3 });
    app = await createTestContext(stack.env, [LagModule]);
  });
  afterAll(async () => {
    await app.close();
    await stack.dispose();
  });

  it('reports lag in messages and in seconds from Postgres offsets, 0 (not NaN) on idle partitions', async () => {
    const topic = stack.topics.counters;
    const now = Date.now();
    const hour = 3_600_000;
    // Ten messages on partition 0 stamped an hour apart, the oldest ten hours ago; nothing elsewhere.
    const producer = stack.kafka.producer();
    await producer.connect();
    await producer.send({
      topic,
      acks: -1,
      messages: Array.from({ length: 10 }, (_, i) => ({
        partition: 0,
        value: `m${i}`,
        timestamp: String(now - (10 - i) * hour),
      })),
    });
    await producer.disconnect();

    const monitor = app.get(LagMonitor);
    const before = await monitor.snapshot(stack.groupId, [topic], now);
    expect(before.map((p) => [p.partition, p.lagMessages])).toEqual([
      [0, 10],
      [1, 0],
      [2, 0],
    ]);
    // Nothing applied yet: the oldest unapplied message is ten hours old.
    expect(before[0]?.lagSeconds).toBeCloseTo(10 * 3600, -2);
    expect(before.slice(1).map((p) => p.lagSeconds)).toEqual([0, 0]);

    // The consumer applied offsets 0..3: the oldest unapplied is message 4, six hours old.
    const database = app.get(Database);
    await database.db.tx((t) => app.get(OffsetRepository).advance(t, stack.groupId, topic, 0, 4));
    const after = await monitor.snapshot(stack.groupId, [topic], now);
    expect(after[0]).toMatchObject({ appliedOffset: 4, position: 4, endOffset: 10, lagMessages: 6 });
    expect(Math.abs((after[0]?.lagSeconds ?? 0) - 6 * 3600)).toBeLessThanOrEqual(6 * 3.6 + 0.001);

    await database.db.tx((t) => app.get(OffsetRepository).advance(t, stack.groupId, topic, 0, 10));
    const caughtUp = await monitor.snapshot(stack.groupId, [topic], now);
    expect(caughtUp.map((p) => [p.lagMessages, p.lagSeconds])).toEqual([
      [0, 0],
      [0, 0],
      [0, 0],
    ]);
  });
});
