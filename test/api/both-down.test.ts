import { AppProcess, KafkaBroker, PostgresServer, TestStack, readEvents, waitFor } from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const MAX_IN_FLIGHT = 64;

const metric = async (baseUrl: string, name: string): Promise<number> => {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  return Number(line?.split(' ').at(-1) ?? NaN);
};

/**
 * G1 and G6 with Kafka AND Postgres stopped: writes are answered 503 with Retry-After (nothing is
 * acknowledged), in-flight work stays within its bound and memory does not grow with the refused load,
 * and every write acknowledged before the outage is in Kafka.
 */
describe('Kafka and Postgres both down', () => {
  let broker: KafkaBroker;
  let postgres: PostgresServer;
  let stack: TestStack;
  let api: AppProcess;
  let baseUrl: string;

  beforeAll(async () => {
    [broker, postgres] = await Promise.all([KafkaBroker.start(), PostgresServer.start()]);
    stack = await TestStack.create({ brokers: broker.brokers, databaseUrl: postgres.url });
    // The old space capped at 96 MiB: work queued without bound would end the process (out of memory).
    api = new AppProcess(
      'api',
      {
        ...stack.env,
        LOG_LEVEL: 'warn',
        API_MAX_IN_FLIGHT: String(MAX_IN_FLIGHT),
        API_PRODUCE_TIMEOUT_MS: '300',
        API_BREAKER_RESET_MS: '1000',
      },
      [],
      ['--max-old-space-size=96'],
    );
    await api.ready(Number(stack.env['API_PORT']));
    baseUrl = `http://127.0.0.1:${stack.env['API_PORT']}`;
  });
  afterAll(async () => {
    await api.stop();
    await stack.dispose();
    await Promise.all([broker.dispose(), postgres.dispose()]);
  });

  const post = async (i: number) => {
    try {
      const response = await fetch(`${baseUrl}/v1/counters/down-${i % 5}/increment`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': `k-${i}` },
        body: JSON.stringify({ by: 1 }),
      });
      const body = (await response.json()) as { eventId?: string; mode?: string };
      return {
        status: response.status,
        retryAfter: response.headers.get('retry-after'),
        eventId: body.eventId,
        mode: body.mode,
      };
    } catch {
      return { status: 0, retryAfter: null, eventId: undefined, mode: undefined };
    }
  };

  it('answers 503 with Retry-After, stays bounded, and loses nothing acknowledged before', async () => {
    // 200 writes, 50 at a time (within the in-flight bound).
    const before = [];
    for (let round = 0; round < 4; round++) {
      before.push(...(await Promise.all(Array.from({ length: 50 }, (_, i) => post(round * 50 + i)))));
    }
    expect(before.filter((r) => r.status !== 202 && r.status !== 200)).toEqual([]);
    // 202: in Kafka. 200: written through (the fresh broker may be slow to take the first sends).
    const acknowledged = before.flatMap((r) => (r.eventId && r.mode === 'write-behind' ? [r.eventId] : []));
    const writtenThrough = before.flatMap((r) => (r.eventId && r.mode === 'write-through' ? [r.eventId] : []));
    expect(acknowledged.length + writtenThrough.length).toBe(200);

    await Promise.all([broker.stop(), postgres.stop()]);
    let maxInFlight = 0;
    const statuses = new Map<number, number>();
    const retryAfters = new Set<string | null>();
    // 8,000 writes from 200 concurrent clients while nothing can store them.
    for (let round = 0; round < 40; round++) {
      const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => post(10_000 + round * 200 + i)));
      for (const a of answers) {
        statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
        if (a.status === 503) retryAfters.add(a.retryAfter);
      }
      maxInFlight = Math.max(maxInFlight, await metric(baseUrl, 'writebehind_writes_in_flight'));
    }

    expect([...statuses.keys()]).toEqual([503]);
    expect(retryAfters).toEqual(new Set(['1']));
    expect(maxInFlight).toBeLessThanOrEqual(MAX_IN_FLIGHT);
    expect(await metric(baseUrl, 'writebehind_produce_queued_events')).toBe(0);
    // Still alive within its 96 MiB heap: the refused work was not kept.
    expect(api.running).toBe(true);

    await Promise.all([broker.restart(), postgres.restart()]);
    // Every write acknowledged before the outage is in Kafka (acks=all): nothing acknowledged is lost.
    const inKafka = await waitFor(
      async () => {
        const ids = new Set((await readEvents(stack.kafka, stack.topics.counters)).map((e) => e.event.id));
        return acknowledged.every((id) => ids.has(id)) ? ids : undefined;
      },
      { description: 'acknowledged events in Kafka' },
    );
    expect(acknowledged.filter((id) => !inKafka.has(id))).toEqual([]);
    const ledger = await stack.query<{ event_id: string }>(
      'SELECT event_id FROM processed_events WHERE event_id = ANY($1)',
      [writtenThrough],
    );
    expect(ledger.length).toBe(writtenThrough.length);
    // And the API serves writes again once both are back.
    await waitFor(async () => [200, 202].includes((await post(99_999)).status), {
      description: 'writes accepted again',
    });
  });
});
