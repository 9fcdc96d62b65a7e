import { AppProcess, TestStack, WriteLoad, freePort, waitFor, waitForLagZero } from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Scale-out on one machine: three API processes and three consumer processes on 12-partition topics.
 * One of each is SIGKILLed under load; clients move to the surviving APIs, the surviving consumers take the
 * dead one's partitions, and the oracle holds: every acknowledged write applied once.
 */
describe('three APIs and three consumers, one of each killed under load', () => {
  let stack: TestStack;
  const apis: { process: AppProcess; port: number }[] = [];
  const consumers: { process: AppProcess; port: number }[] = [];

  beforeAll(async () => {
    stack = await TestStack.create({ partitions: 12 });
    for (let i = 0; i < 3; i++) {
      const [apiPort, consumerPort] = [await freePort(), await freePort()];
      apis.push({
        port: apiPort,
        process: new AppProcess('api', { ...stack.env, LOG_LEVEL: 'warn', API_PORT: String(apiPort) }),
      });
      consumers.push({
        port: consumerPort,
        process: new AppProcess('consumer', { ...stack.env, LOG_LEVEL: 'warn', CONSUMER_PORT: String(consumerPort) }),
      });
    }
    await Promise.all([...apis, ...consumers].map(({ process, port }) => process.ready(port)));
  });
  afterAll(async () => {
    await Promise.all([...apis, ...consumers].map(({ process }) => process.stop()));
    await stack.dispose();
  });

  it('keeps the oracle when an API and a consumer die', async () => {
    const load = new WriteLoad({
      baseUrl: apis.map((a) => `http://127.0.0.1:${a.port}`),
      clients: 12,
      counters: 24,
      prefix: 'scale',
    });
    await load.until((l) => l.acked >= 600);
    apis[0]?.process.kill('SIGKILL');
    consumers[0]?.process.kill('SIGKILL');
    const atKill = load.acked;
    await load.until((l) => l.acked >= atKill + 1200);
    await load.stop();
    expect(load.abandoned).toBe(0);

    expect((await apis[0]?.process.exited)?.signal).toBe('SIGKILL');
    expect((await consumers[0]?.process.exited)?.signal).toBe('SIGKILL');
    await waitForLagZero(stack.kafka, stack.groupId, [stack.topics.counters, stack.topics.activities], 120_000);
    const expected = Object.fromEntries([...load.oracle].sort());
    await waitFor(
      async () => {
        const rows = await stack.query<{ name: string; value: string }>(
          'SELECT name, value FROM counters ORDER BY name',
        );
        return (
          JSON.stringify(Object.fromEntries(rows.map((r) => [r.name, Number(r.value)]))) === JSON.stringify(expected)
        );
      },
      { timeoutMs: 60_000, description: 'Postgres to equal the oracle' },
    );
    const ledger = await stack.query<{ event_id: string }>('SELECT event_id FROM processed_events');
    const ids = new Set(ledger.map((r) => r.event_id));
    expect([...load.ackedIds].filter((id) => !ids.has(id))).toEqual([]);
    // Served values agree from every surviving API.
    for (const { port } of apis.slice(1)) {
      for (const [name, value] of load.oracle) {
        const served = (await (await fetch(`http://127.0.0.1:${port}/v1/counters/${name}`)).json()) as {
          value: number;
        };
        expect(served.value).toBe(value);
      }
    }
  });
});
