import { AppProcess, EventLoad, TestStack, freePort, scrapeMetrics, waitFor, waitForLagZero } from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Consumer processes share the partitions of the group and hand them over under load, 1 -> 3 -> 1: each process
 * applies its share, the two that leave drain and exit cleanly, and no event is applied twice or lost (G2).
 */
describe('scaling the consumer group under load', () => {
  let stack: TestStack;
  let load: EventLoad;
  const running: AppProcess[] = [];
  const topics = () => [stack.topics.counters, stack.topics.activities];

  const start = async () => {
    const port = await freePort();
    const process = new AppProcess('consumer', {
      ...stack.env,
      CONSUMER_PORT: String(port),
      CONSUMER_SESSION_TIMEOUT_MS: '10000',
      CONSUMER_HEARTBEAT_INTERVAL_MS: '1000',
      LOG_LEVEL: 'warn',
    });
    running.push(process);
    await process.ready(port, 90_000);
    return { process, port };
  };
  const applied = async (port: number) => (await scrapeMetrics(port)).sum('writebehind_consumer_events_applied_total');

  beforeAll(async () => {
    // Six partitions per topic: three processes get four partitions each (round robin over both topics).
    stack = await TestStack.create({ partitions: 6 });
    load = new EventLoad(stack.kafka, stack.topics, { batch: 100, pauseMs: 25, counters: 60 });
    await load.connect();
  });
  afterAll(async () => {
    await Promise.all(running.map((p) => p.stop()));
    await load?.disconnect();
    await stack?.dispose();
  });

  it('1 -> 3 -> 1 processes: every event applied exactly once', async () => {
    load.start();
    const first = await start();
    await waitFor(async () => (await applied(first.port)) > 2000, { description: 'the first process applying' });

    const second = await start();
    const third = await start();
    // After the rebalance each of the three applies its own share.
    const before = await Promise.all([first, second, third].map((c) => applied(c.port)));
    await waitFor(
      async () => {
        const now = await Promise.all([first, second, third].map((c) => applied(c.port)));
        return now.every((n, i) => n > (before[i] ?? 0) + 1000);
      },
      { timeoutMs: 90_000, description: 'all three processes applying' },
    );

    const [exitSecond, exitThird] = await Promise.all([second.process.stop(), third.process.stop()]);
    expect(exitSecond).toEqual({ code: 0, signal: null });
    expect(exitThird).toEqual({ code: 0, signal: null });

    // The survivor takes all partitions back and goes on applying.
    const alone = await applied(first.port);
    await waitFor(async () => (await applied(first.port)) > alone + 2000, {
      timeoutMs: 90_000,
      description: 'the remaining process applying alone',
    });
    await load.stop();
    await waitForLagZero(stack.kafka, stack.groupId, topics(), 180_000);

    const rows = await stack.query<{ name: string; value: string }>('SELECT name, value FROM counters');
    const values = new Map(rows.map((r) => [r.name, Number(r.value)]));
    const expected = load.expectedCounters();
    expect(new Set(values.keys())).toEqual(new Set(expected.keys()));
    for (const [name, value] of expected) expect(values.get(name), name).toBe(value);
    const activities = await stack.query<{ id: string }>('SELECT id FROM activities ORDER BY id');
    expect(activities.map((a) => a.id)).toEqual(load.expectedActivityIds());
    // Each acknowledged id is in the ledger once; the three processes' applied counts add up to it exactly.
    const ledger = await stack.query<{ n: number }>('SELECT count(*)::int AS n FROM processed_events');
    expect(ledger[0]?.n).toBe(load.ackedCount);
  });
});
