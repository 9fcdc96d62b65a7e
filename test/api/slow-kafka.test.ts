import { AppProcess, KafkaBroker, TestStack, freePort, waitFor, waitForLagZero } from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Kafka slow, and the API's Postgres unreachable (its reads and write-through fail, the consumer's work).
 *
 * A write whose Kafka send timed out may still land. When write-through then fails too, the API must not answer
 * "nothing was applied": a client that believed it would send the write again as a new one, and it would count
 * twice. The broker here is slow, not stopped (a proxy holds each request 4 s, past the API's 1 s produce timeout),
 * and the API's own Postgres is unreachable, so the fallback fails.
 */
describe('a slow broker, and an API that cannot reach Postgres', () => {
  let broker: KafkaBroker;
  let stack: TestStack;
  let api: AppProcess;
  let consumer: AppProcess;
  let base: string;

  beforeAll(async () => {
    broker = await KafkaBroker.start({ proxied: true });
    stack = await TestStack.create({ brokers: broker.brokers });
    const env = { ...stack.env, LOG_LEVEL: 'warn' };
    // Nothing listens on the API's Postgres port: its write-through always fails. The consumer has the real one.
    api = new AppProcess('api', {
      ...env,
      DATABASE_URL: `postgres://postgres@127.0.0.1:${await freePort()}/test`,
      API_PRODUCE_TIMEOUT_MS: '1000',
      API_BREAKER_RESET_MS: '1000',
    });
    const consumerPort = await freePort();
    consumer = new AppProcess('consumer', { ...env, CONSUMER_PORT: String(consumerPort) });
    await Promise.all([api.ready(Number(stack.env['API_PORT'])), consumer.ready(consumerPort)]);
    base = `http://127.0.0.1:${stack.env['API_PORT']}`;
  });
  afterAll(async () => {
    await Promise.all([api?.stop(), consumer?.stop()]);
    await stack?.dispose();
    await broker?.dispose();
  });

  const increment = (headers: Record<string, string> = {}) =>
    fetch(`${base}/v1/counters/slow:once/increment`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ by: 7 }),
    });

  it('answers that the outcome is unknown, with the key that makes a retry apply it at most once', async () => {
    // Warm up: the producer has its connection and metadata before the broker slows down.
    expect((await increment()).status).toBe(202);
    if (!broker.proxy) throw new Error('no proxy');
    broker.proxy.delayMs = 4000;

    const unknown = await increment();
    expect(unknown.status).toBe(503);
    const problem = (await unknown.json()) as { type: string; idempotencyKey: string; eventId: string };
    expect(problem.type).toBe('/problems/outcome-unknown');
    expect(unknown.headers.get('idempotency-key')).toBe(problem.idempotencyKey);
    expect(problem.eventId).toMatch(new RegExp(`^public:${problem.idempotencyKey}#`));

    // The broker is fast again; the client retries the same write with the key it was given.
    broker.proxy.delayMs = 0;
    const retried = await waitFor(
      async () => {
        const response = await increment({ 'idempotency-key': problem.idempotencyKey });
        return response.status === 202 ? ((await response.json()) as { eventId: string }) : undefined;
      },
      { timeoutMs: 60_000, description: 'the retry accepted' },
    );
    expect(retried.eventId).toBe(problem.eventId);

    // The late first send and the retry are one event: applied once, after the warm-up's 7.
    await waitForLagZero(stack.kafka, stack.groupId, [stack.topics.counters], 60_000);
    const [row] = await stack.query<{ value: string }>("SELECT value FROM counters WHERE name = 'slow:once'");
    expect(Number(row?.value)).toBe(14);
    const [ledger] = await stack.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM processed_events WHERE event_id = $1',
      [problem.eventId],
    );
    expect(ledger?.n).toBe(1);
  });

  it('keeps the delta of a write to a cold counter in the view while Postgres cannot fill it', async () => {
    if (!broker.proxy) throw new Error('no proxy');
    broker.proxy.delayMs = 0;
    const response = await waitFor(
      async () => {
        const r = await fetch(`${base}/v1/counters/cold:unfilled/increment`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ by: 3 }),
        });
        return r.status === 202 ? ((await r.json()) as { value: number | null; eventId: string }) : undefined;
      },
      { timeoutMs: 30_000, description: 'the write accepted by Kafka' },
    );
    // Acknowledged (Kafka has it), its value unknown: the counter's base could not be read from Postgres.
    expect(response.value).toBeNull();
    // The delta stays in the view until the consumer applies it: reads must not lose an acknowledged write.
    const pending = await stack.redis.hgetall(`${stack.keyPrefix}{c:cold:unfilled}:pending`);
    expect(pending[response.eventId]).toMatch(/^3:/);
    await waitForLagZero(stack.kafka, stack.groupId, [stack.topics.counters], 60_000);
    const [row] = await stack.query<{ value: string }>("SELECT value FROM counters WHERE name = 'cold:unfilled'");
    expect(Number(row?.value)).toBe(3);
  });
});
