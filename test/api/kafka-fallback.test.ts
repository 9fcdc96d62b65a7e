import { AppProcess, KafkaBroker, TestStack, WriteLoad, readEvents, waitFor } from '@app/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

/**
 * G1 and G2 across a Kafka outage: the API falls back to write-through (Postgres and Redis synchronously)
 * when its private broker is stopped, with no error seen by clients, and goes back to Kafka when it returns.
 * Postgres ends equal to the oracle: no acknowledged write lost, none applied twice.
 */
describe('write-through fallback when Kafka is unavailable', () => {
  let broker: KafkaBroker;
  let stack: TestStack;
  const apps: AppProcess[] = [];

  beforeAll(async () => {
    broker = await KafkaBroker.start();
    stack = await TestStack.create({ brokers: broker.brokers });
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.stop()));
  });
  afterAll(async () => {
    await stack.dispose();
    await broker.dispose();
  });

  const start = async (env: Record<string, string> = {}) => {
    const api = new AppProcess('api', { ...stack.env, LOG_LEVEL: 'warn', ...env });
    const consumer = new AppProcess('consumer', { ...stack.env, LOG_LEVEL: 'warn' });
    apps.push(api, consumer);
    await Promise.all([api.ready(Number(stack.env['API_PORT'])), consumer.ready(Number(stack.env['CONSUMER_PORT']))]);
    return { api, consumer, baseUrl: `http://127.0.0.1:${stack.env['API_PORT']}` };
  };

  /**
   * Waits until Postgres holds exactly the oracle for every counter of this load (the consumer has caught up).
   * The stack is shared by the tests of this file: counters of other loads (other prefixes) are not compared.
   */
  const expectPostgresEqualsOracle = async (load: WriteLoad, prefix: string) => {
    const expected = Object.fromEntries([...load.oracle].sort());
    await waitFor(
      async () => {
        const rows = await stack.query<{ name: string; value: string }>(
          'SELECT name, value FROM counters WHERE starts_with(name, $1) ORDER BY name',
          [prefix],
        );
        const actual = Object.fromEntries(rows.map((r) => [r.name, Number(r.value)]));
        return JSON.stringify(actual) === JSON.stringify(expected) ? actual : undefined;
      },
      { timeoutMs: 120_000, description: 'Postgres to equal the oracle' },
    );
  };

  it('switches to write-through while the broker is down and back after, losing and doubling nothing', async () => {
    const { baseUrl } = await start({ API_PRODUCE_TIMEOUT_MS: '1500', API_BREAKER_RESET_MS: '1000' });
    const load = new WriteLoad({ baseUrl, clients: 16, counters: 8, prefix: 'outage' });

    await load.until((l) => l.count('write-behind') >= 300);
    await broker.stop();
    const behindBeforeOutage = load.count('write-behind');
    await load.until((l) => l.count('write-through') >= 300);
    await broker.restart();
    await load.until((l) => l.count('write-behind') >= behindBeforeOutage + 300);
    await load.stop();

    // No client saw an error: every request was acknowledged, first time.
    expect(load.stats.refused).toEqual(new Map());
    expect(load.count('write-through')).toBeGreaterThanOrEqual(300);
    await expectPostgresEqualsOracle(load, 'outage');
    // The view converges too: GET serves Postgres' value.
    for (const [name, value] of load.oracle) {
      const served = (await (await fetch(`${baseUrl}/v1/counters/${name}`)).json()) as { value: number };
      expect(served.value).toBe(value);
    }
  });

  it('applies once a write whose Kafka send timed out but in fact succeeded', async () => {
    // A produce timeout of 1 ms: the sends reach Kafka, but their acknowledgement comes too late, so every
    // write is also written through. The consumer then meets those events in Kafka already in the ledger.
    // No linger: an event waiting 5 ms for company would expire in the queue at 1 ms and never be sent at all.
    const { baseUrl } = await start({
      API_PRODUCE_TIMEOUT_MS: '1',
      API_PRODUCE_LINGER_MS: '0',
      API_BREAKER_RESET_MS: '200',
    });
    const load = new WriteLoad({ baseUrl, clients: 8, counters: 4, prefix: 'late-ack' });
    const inKafka = async () => {
      const events = await readEvents(stack.kafka, stack.topics.counters);
      return events.flatMap((e) => (e.event.key.startsWith('late-ack') ? [e.event.id] : []));
    };
    await load.until((l) => l.count('write-through') >= 200);
    await waitFor(async () => (await inKafka()).length >= 5, { description: 'timed-out sends to land in Kafka' });
    await load.stop();

    expect(load.stats.refused).toEqual(new Map());
    await expectPostgresEqualsOracle(load, 'late-ack');
    // Those events were acknowledged as write-through and are in Kafka: applied once, by the fallback.
    const ids = await inKafka();
    const ledger = await stack.query<{ event_id: string; source: string }>(
      'SELECT event_id, source FROM processed_events WHERE event_id = ANY($1)',
      [ids],
    );
    expect(ledger.length).toBe(ids.length);
    expect(ledger.some((row) => row.source === 'write-through')).toBe(true);
  });
});
