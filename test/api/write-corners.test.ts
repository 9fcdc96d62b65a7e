import { idempotencyKey } from '@app/idempotency';
import { AppProcess, TestStack, freePort, waitFor, waitForLagZero } from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const KEY = 'corners-key-0123456789abcdef';
const CLIENT = 'corners';

/**
 * Acknowledged writes in the corners of the idempotency and value rules: none is lost, none applied twice, and what
 * cannot be applied is refused before it is acknowledged (docs/architecture.md, "Event ids" and "Bounds").
 */
describe('write corners: reused keys, deep bodies, counters at the largest safe integer', () => {
  let stack: TestStack;
  let api: AppProcess;
  let consumer: AppProcess;
  let base: string;

  beforeAll(async () => {
    stack = await TestStack.create();
    const env = { ...stack.env, LOG_LEVEL: 'warn', API_KEYS: `${KEY}:${CLIENT}` };
    api = new AppProcess('api', env);
    const consumerPort = await freePort();
    consumer = new AppProcess('consumer', { ...env, CONSUMER_PORT: String(consumerPort) });
    await Promise.all([api.ready(Number(stack.env['API_PORT'])), consumer.ready(consumerPort)]);
    base = `http://127.0.0.1:${stack.env['API_PORT']}`;
  });
  afterAll(async () => {
    await Promise.all([api?.stop(), consumer?.stop()]);
    await stack?.dispose();
  });

  const send = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, {
      method,
      headers: { 'x-api-key': KEY, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
  /** What the 24 h TTL, an eviction or a Redis loss does to a key's record. */
  const forget = (key: string) => stack.redis.del(`${stack.keyPrefix}${idempotencyKey(CLIENT, key)}`);
  const applied = () =>
    waitForLagZero(stack.kafka, stack.groupId, [stack.topics.counters, stack.topics.activities], 60_000);

  it('applies a different request under a key whose record is gone, and a repeat of it once', async () => {
    const increment = (by: number) =>
      send('POST', '/v1/counters/idem:reuse/increment', { by }, { 'idempotency-key': 'reused' });
    expect((await increment(1)).status).toBe(202);
    await forget('reused');
    const second = await increment(5);
    expect(second.status).toBe(202);
    // The same request again after its record is gone too: the event is the same, applied once.
    await forget('reused');
    const repeat = await increment(5);
    expect(repeat.status).toBe(202);
    expect(((await repeat.json()) as { eventId: string }).eventId).toBe(
      ((await second.json()) as { eventId: string }).eventId,
    );
    await applied();
    await waitFor(
      async () => {
        const [row] = await stack.query<{ value: string }>("SELECT value FROM counters WHERE name = 'idem:reuse'");
        return Number(row?.value) === 6;
      },
      { description: 'Postgres at 1 + 5' },
    );
    expect(await (await send('GET', '/v1/counters/idem:reuse')).json()).toEqual({ name: 'idem:reuse', value: 6 });
  });

  it('stores a different activity under an id whose record is gone', async () => {
    const activity = (object: string) =>
      send('POST', '/v1/activities', { id: 'act-reused', actor: 'reuser', verb: 'posted', object });
    expect((await activity('first')).status).toBe(202);
    await forget('act-reused');
    expect((await activity('second')).status).toBe(202);
    await applied();
    await waitFor(
      async () =>
        (await stack.query("SELECT object FROM activities WHERE actor = 'reuser' ORDER BY object")).length === 2,
      { description: 'both activities stored' },
    );
  });

  it('answers 400 for activity data nested 3,000 levels deep, and stores nothing', async () => {
    const deep = `{"actor":"deep","verb":"v","object":"o","data":${'{"x":'.repeat(3000)}1${'}'.repeat(3000)}}`;
    const response = await send('POST', '/v1/activities', deep);
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const problem = (await response.json()) as { errors: { field: string; message: string }[] };
    expect(problem.errors).toEqual([{ field: 'body.data', message: 'at most 32 levels of nesting' }]);
  });

  it('refuses with 422 a write that would take a counter past 2^53 - 1, cached or cold, single or batched', async () => {
    const near = Number.MAX_SAFE_INTEGER - 10;
    await stack.query('INSERT INTO counters (name, value, version) VALUES ($1, $2, 1), ($3, $2, 1)', [
      'huge:cached',
      String(near),
      'huge:cold',
    ]);
    expect(await (await send('GET', '/v1/counters/huge:cached')).json()).toEqual({ name: 'huge:cached', value: near });
    const single = await send('POST', '/v1/counters/huge:cached/increment', { by: 11 });
    expect(single.status).toBe(422);
    expect(((await single.json()) as { type: string }).type).toBe('/problems/counter-out-of-range');
    expect((await send('POST', '/v1/counters/huge:cold/increment', { by: 100 })).status).toBe(422);
    const batch = await send('POST', '/v1/counters/batch', {
      increments: [
        { name: 'huge:ok', by: 1 },
        { name: 'huge:cached', by: 5 },
        { name: 'huge:cached', by: 6 },
      ],
    });
    expect(batch.status).toBe(422);
    // Up to the bound is fine, and nothing refused left a trace in the view.
    expect((await send('POST', '/v1/counters/huge:cached/increment', { by: 10 })).status).toBe(202);
    expect(await (await send('GET', '/v1/counters/huge:cached')).json()).toEqual({
      name: 'huge:cached',
      value: Number.MAX_SAFE_INTEGER,
    });
    expect(await (await send('GET', '/v1/counters/huge:ok')).json()).toEqual({ name: 'huge:ok', value: 0 });
    await applied();
    const rows = await stack.query<{ name: string; value: string }>(
      "SELECT name, value FROM counters WHERE name LIKE 'huge:%' ORDER BY name",
    );
    expect(rows).toEqual([
      { name: 'huge:cached', value: String(Number.MAX_SAFE_INTEGER) },
      { name: 'huge:cold', value: String(near) },
    ]);
  });
});
