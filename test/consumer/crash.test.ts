import { setTimeout as sleep } from 'node:timers/promises';
import { AppProcess, EventLoad, TestStack, scrapeMetrics, uniqueName, waitFor, waitForLagZero } from '@app/testing';
import type { Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

type Moment = 'before' | 'during' | 'after' | 'random';

/**
 * G2 under crashes: the consumer is SIGKILLed again and again under load: before its Postgres transaction (right
 * after joining, its first batches in flight), during it (frozen with SIGSTOP while pg_stat_activity shows its
 * writing transaction open), after it (frozen while its Postgres offset is ahead of Kafka's committed offset:
 * committed in Postgres, not yet in Kafka) and at random points. The freeze makes the moment exact: the state seen
 * is the state it dies in. After the last restart and lag zero, Postgres equals the oracle: nothing lost, nothing
 * applied twice.
 */
describe('SIGKILL of the consumer under load', () => {
  let stack: TestStack;
  let load: EventLoad;
  let admin: Admin;
  const applicationName = uniqueName('crash');
  const port = () => Number(stack.env['CONSUMER_PORT']);
  const topics = () => [stack.topics.counters, stack.topics.activities];
  const env = () => ({
    ...stack.env,
    DATABASE_APPLICATION_NAME: applicationName,
    // A SIGKILLed member is replaced once its session expires: keep that short so the test restarts quickly.
    CONSUMER_SESSION_TIMEOUT_MS: '6000',
    CONSUMER_HEARTBEAT_INTERVAL_MS: '500',
    LOG_LEVEL: 'warn',
  });
  const running: AppProcess[] = [];

  beforeAll(async () => {
    stack = await TestStack.create();
    load = new EventLoad(stack.kafka, stack.topics, { batch: 100, pauseMs: 25 });
    await load.connect();
    admin = stack.kafka.admin();
    await admin.connect();
  });
  afterAll(async () => {
    await Promise.all(running.map((p) => p.stop()));
    await admin?.disconnect();
    await load?.disconnect();
    await stack?.dispose();
  });

  /** Per partition, the next offset stored in Postgres. */
  async function storedOffsets(): Promise<Map<string, number>> {
    const rows = await stack.query<{ topic: string; partition: number; next_offset: string }>(
      'SELECT topic, partition, next_offset FROM consumer_offsets WHERE group_id = $1',
      [stack.groupId],
    );
    return new Map(rows.map((r) => [`${r.topic}/${r.partition}`, Number(r.next_offset)]));
  }
  const total = (offsets: Map<string, number>) => [...offsets.values()].reduce((a, b) => a + b, 0);

  /** Per partition, the group's committed offset in Kafka. */
  async function kafkaOffsets(): Promise<Map<string, number>> {
    const committed = await admin.fetchOffsets({ groupId: stack.groupId, topics: topics() });
    return new Map(committed.flatMap((t) => t.partitions.map((p) => [`${t.topic}/${p.partition}`, Number(p.offset)])));
  }

  /** Partitions this consumer committed in Postgres (beyond `since`) and not in Kafka. */
  async function aheadOfKafka(since: Map<string, number>): Promise<string[]> {
    const [stored, kafka] = await Promise.all([storedOffsets(), kafkaOffsets()]);
    return [...stored].filter(([key, pg]) => pg > (since.get(key) ?? 0) && pg > (kafka.get(key) ?? -1)).map(([k]) => k);
  }

  async function inWritingTransaction(): Promise<boolean> {
    const rows = await stack.query(
      `SELECT 1 FROM pg_stat_activity
        WHERE application_name = $1 AND backend_xid IS NOT NULL AND state IN ('active', 'idle in transaction')`,
      [applicationName],
    );
    return rows.length > 0;
  }

  /**
   * Freezes the consumer (SIGSTOP) at random moments until `condition` holds while it is frozen, and leaves it
   * frozen then: the state seen is the state it dies in. Otherwise it is thawed (SIGCONT) and tried again.
   */
  async function freezeWhen(consumer: AppProcess, condition: () => Promise<boolean>): Promise<void> {
    await waitFor(
      async () => {
        // The random pause picks the moment to look at; what the test waits for is the condition.
        await sleep(Math.floor(Math.random() * 40));
        consumer.kill('SIGSTOP');
        if (await condition()) return true;
        consumer.kill('SIGCONT');
        return false;
      },
      { intervalMs: 1, timeoutMs: 90_000, description: 'the consumer frozen at the wanted moment' },
    );
  }

  it('restarts into exactly the oracle, whatever the moment of the kill', async () => {
    const moments: Moment[] = ['before', 'during', 'after', 'random', 'during', 'after'];
    const observed: { moment: Moment; ahead: string[] }[] = [];
    let pendingSkipCheck = false;
    load.start();

    for (const moment of moments) {
      const consumer = new AppProcess('consumer', env());
      running.push(consumer);
      await consumer.ready(port(), 90_000);
      const atStart = await storedOffsets();

      if (pendingSkipCheck) {
        // The previous kill left Postgres ahead of Kafka: this process was handed those messages again and
        // skipped them by the Postgres offset rather than applying them twice.
        await waitFor(
          async () =>
            (await scrapeMetrics(port())).sum('writebehind_consumer_events_deduplicated_total', { reason: 'offset' }) >
            0,
          { timeoutMs: 60_000, description: 'messages below the Postgres offset skipped' },
        );
      }

      switch (moment) {
        case 'before':
          // Just joined: its first batches are being fetched, nothing of this process is in Postgres yet.
          break;
        case 'during':
          await freezeWhen(consumer, inWritingTransaction);
          break;
        case 'after':
          await freezeWhen(consumer, async () => (await aheadOfKafka(atStart)).length > 0);
          break;
        case 'random': {
          const target = total(atStart) + 200 + Math.floor(Math.random() * 3000);
          await waitFor(async () => total(await storedOffsets()) >= target, { intervalMs: 20, timeoutMs: 60_000 });
          break;
        }
      }
      const ahead = await aheadOfKafka(atStart);
      consumer.kill('SIGKILL');
      expect(await consumer.exited).toMatchObject({ signal: 'SIGKILL' });
      if (moment === 'after') expect(ahead.length).toBeGreaterThan(0);
      // Postgres ahead of Kafka: the next process is handed those messages again and must skip them.
      pendingSkipCheck = ahead.length > 0;
      observed.push({ moment, ahead });
    }

    const last = new AppProcess('consumer', env());
    running.push(last);
    await last.ready(port(), 90_000);
    await load.stop();
    await waitForLagZero(stack.kafka, stack.groupId, topics(), 180_000);

    const rows = await stack.query<{ name: string; value: string }>('SELECT name, value FROM counters');
    const values = new Map(rows.map((r) => [r.name, Number(r.value)]));
    const expected = load.expectedCounters();
    expect(new Set(values.keys())).toEqual(new Set(expected.keys()));
    for (const [name, value] of expected) expect(values.get(name), name).toBe(value);
    const activities = await stack.query<{ id: string }>('SELECT id FROM activities ORDER BY id');
    expect(activities.map((a) => a.id)).toEqual(load.expectedActivityIds());
    const ledger = await stack.query<{ n: number }>('SELECT count(*)::int AS n FROM processed_events');
    expect(ledger[0]?.n).toBe(load.ackedCount);
    expect(observed.map((o) => o.moment)).toEqual(moments);
  });
});
