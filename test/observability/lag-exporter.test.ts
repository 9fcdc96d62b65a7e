import { setTimeout as sleep } from 'node:timers/promises';
import { AppProcess, type Sample, TestStack, WriteLoad, scrapeMetrics, uniqueName, waitFor } from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** The lag series the API exports, per partition of the test's topics. */
async function exportedLag(port: number, groupId: string) {
  const { samples } = await scrapeMetrics(port);
  const of = (name: string) => samples.filter((s) => s.name === name && s.labels['group'] === groupId);
  return { seconds: of('writebehind_consumer_lag_seconds'), messages: of('writebehind_consumer_lag_messages') };
}

const maxOf = (samples: Sample[], topic: string) =>
  Math.max(...samples.filter((s) => s.labels['topic'] === topic).map((s) => s.value));

describe('consumer lag exported by the API while the consumer is down', () => {
  let stack: TestStack;
  let api: AppProcess;
  let consumer: AppProcess;
  let load: WriteLoad | undefined;
  let env: Record<string, string>;
  const apiPort = () => Number(stack.env['API_PORT']);
  const consumerPort = () => Number(stack.env['CONSUMER_PORT']);

  beforeAll(async () => {
    stack = await TestStack.create({ partitions: 3 });
    // Refreshed twice a second, so the exported value trails the truth by at most that (plus one refresh).
    env = { ...stack.env, API_LAG_EXPORT_INTERVAL_MS: '500' };
    api = new AppProcess('api', env);
    consumer = new AppProcess('consumer', env);
    await Promise.all([api.ready(apiPort()), consumer.ready(consumerPort())]);
  });
  afterAll(async () => {
    await load?.stop();
    await Promise.all([api?.stop(), consumer?.stop()]);
    await stack?.dispose();
  });

  it('grows with wall time while the consumer is stopped and writes go on, and returns to 0 after restart', async () => {
    const counters = stack.topics.counters;
    const activities = stack.topics.activities;
    load = new WriteLoad({
      baseUrl: `http://127.0.0.1:${apiPort()}`,
      clients: 3,
      counters: 30,
      prefix: uniqueName('lag'),
    });

    // Running: every partition of both topics is exported, and the counters' lag stays small.
    await waitFor(
      async () => {
        const lag = await exportedLag(apiPort(), stack.groupId);
        return (
          lag.seconds.length === 6 &&
          lag.messages.length === 6 &&
          load &&
          load.acked > 200 &&
          maxOf(lag.seconds, counters) < 3
        );
      },
      { timeoutMs: 60_000, intervalMs: 250, description: 'lag exported for 6 partitions, small while consuming' },
    );

    await consumer.stop();
    const stoppedAt = Date.now();
    const samples: { at: number; seconds: number; messages: number }[] = [];
    while (Date.now() - stoppedAt < 20_000) {
      const lag = await exportedLag(apiPort(), stack.groupId);
      for (const s of [...lag.seconds, ...lag.messages]) expect(Number.isFinite(s.value), JSON.stringify(s)).toBe(true);
      // The activity topic gets no writes: its lag is 0, not NaN.
      expect(maxOf(lag.seconds, activities)).toBe(0);
      samples.push({ at: Date.now(), seconds: maxOf(lag.seconds, counters), messages: maxOf(lag.messages, counters) });
      await sleep(1000);
    }
    // [seconds since the stop, exported lag seconds, lag messages] of the counters topic, for the log.
    console.log(
      JSON.stringify(
        samples.map((s) => [Math.round((s.at - stoppedAt) / 100) / 10, Math.round(s.seconds * 10) / 10, s.messages]),
      ),
    );
    const acceptedWhileDown = load.acked;
    await load.stop();
    load = undefined;

    // The oldest unapplied event was accepted about when the consumer stopped: the lag tracks the time since then.
    const late = samples.filter((s) => s.at - stoppedAt >= 5000);
    for (const s of late) {
      const sinceStop = (s.at - stoppedAt) / 1000;
      expect(s.seconds, `lag ${s.seconds} s at ${sinceStop} s after the stop`).toBeGreaterThan(sinceStop - 4);
      expect(s.seconds, `lag ${s.seconds} s at ${sinceStop} s after the stop`).toBeLessThan(sinceStop + 4);
    }
    const first = late[0];
    const last = late.at(-1);
    if (!first || !last) throw new Error('no samples');
    const wall = (last.at - first.at) / 1000;
    expect(last.seconds - first.seconds).toBeGreaterThan(wall * 0.8 - 1);
    expect(last.seconds - first.seconds).toBeLessThan(wall * 1.2 + 1);
    expect(last.messages).toBeGreaterThan(first.messages);
    expect(acceptedWhileDown).toBeGreaterThan(0);

    // Restart: the consumer catches up and the exported lag of every partition returns to 0.
    consumer = new AppProcess('consumer', env);
    await consumer.ready(consumerPort());
    const caughtUp = await waitFor(
      async () => {
        const lag = await exportedLag(apiPort(), stack.groupId);
        return [...lag.seconds, ...lag.messages].every((s) => s.value === 0) && lag.seconds.length === 6
          ? lag
          : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 250, description: 'exported lag back to 0 on every partition' },
    );
    expect(caughtUp.seconds.map((s) => s.value)).toEqual([0, 0, 0, 0, 0, 0]);
  });
});
