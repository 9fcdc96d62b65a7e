import { AppProcess, TestStack } from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const KEY_A = 'key-of-client-a-0123456789';
const KEY_B = 'key-of-client-b-0123456789';

/**
 * Per-entity write modes from config, the activity feed, per-client idempotency scopes and rate limits.
 * Counters are written through here (Postgres at once, nothing in Kafka); activities stay write-behind.
 */
describe('write modes, the activity feed, clients', () => {
  let stack: TestStack;
  let api: AppProcess;
  let base: string;

  beforeAll(async () => {
    stack = await TestStack.create();
    api = new AppProcess('api', {
      ...stack.env,
      API_KEYS: `${KEY_A}:client-a,${KEY_B}:client-b`,
      API_WRITE_MODE_COUNTERS: 'write-through',
      API_WRITE_MODE_ACTIVITIES: 'write-through',
      API_RATE_LIMIT: '40',
      API_RATE_LIMIT_WINDOW_MS: '60000',
    });
    await api.ready(Number(stack.env['API_PORT']));
    base = `http://127.0.0.1:${stack.env['API_PORT']}`;
  });
  afterAll(async () => {
    await api.stop();
    await stack.dispose();
  });

  const send = (key: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  it('writes counters through to Postgres when configured, with the value in the answer', async () => {
    const response = await send(KEY_A, 'POST', '/v1/counters/wt/increment', { by: 5 }, { 'idempotency-key': 'same' });
    expect(response.status).toBe(200);
    // The event id is the client's key, scoped by client, with the request's fingerprint (docs/architecture.md).
    expect(await response.json()).toEqual({
      name: 'wt',
      value: 5,
      eventId: expect.stringMatching(/^client-a:same#[\w-]{22}$/) as unknown,
      mode: 'write-through',
    });
    expect(await stack.query('SELECT name, value::int FROM counters')).toEqual([{ name: 'wt', value: 5 }]);

    // The same key from another client is another event: keys are scoped per client.
    const other = await send(KEY_B, 'POST', '/v1/counters/wt/increment', { by: 5 }, { 'idempotency-key': 'same' });
    expect((await other.json()) as { eventId: string; value: number }).toMatchObject({
      eventId: expect.stringMatching(/^client-b:same#/) as unknown,
      value: 10,
    });
    // A repeat of client A's request is answered from its record; nothing is applied again.
    const replay = await send(KEY_A, 'POST', '/v1/counters/wt/increment', { by: 5 }, { 'idempotency-key': 'same' });
    expect(((await replay.json()) as { value: number }).value).toBe(5);
    expect(await stack.query('SELECT value::int FROM counters')).toEqual([{ value: 10 }]);

    const batch = await send(KEY_A, 'POST', '/v1/counters/batch', {
      increments: [
        { name: 'wt', by: 1, id: 'b1' },
        { name: 'wt2', by: 2 },
      ],
    });
    expect(batch.status).toBe(200);
    expect(await batch.json()).toMatchObject({ accepted: 2, mode: 'write-through' });
    const get = await send(KEY_A, 'GET', '/v1/counters/wt');
    expect(await get.json()).toEqual({ name: 'wt', value: 11 });
    expect(await (await send(KEY_A, 'GET', '/v1/counters/never-written')).json()).toEqual({
      name: 'never-written',
      value: 0,
    });
  });

  it('serves the actor feed newest first, paginated by cursor', async () => {
    const activities = Array.from({ length: 5 }, (_, i) => ({
      id: `act-${i}`,
      actor: 'alice@example.com',
      verb: 'viewed',
      object: `post:${i}`,
      occurredAt: new Date(Date.UTC(2026, 10, 1, 12, i)).toISOString(),
      data: { i },
    }));
    const batch = await send(KEY_A, 'POST', '/v1/activities/batch', { activities: activities.slice(0, 4) });
    expect(batch.status).toBe(200);
    const single = await send(KEY_A, 'POST', '/v1/activities', activities[4]);
    expect(await single.json()).toEqual({
      id: expect.stringMatching(/^client-a:act-4#[\w-]{22}$/) as unknown,
      mode: 'write-through',
    });

    const first = (await (await send(KEY_A, 'GET', '/v1/actors/alice@example.com/activities?limit=2')).json()) as {
      items: { id: string; object: string; data: unknown }[];
      next: string | null;
    };
    expect(first.items.map((i) => i.object)).toEqual(['post:4', 'post:3']);
    expect(first.items[0]?.data).toEqual({ i: 4 });
    const second = (await (
      await send(KEY_A, 'GET', `/v1/actors/alice@example.com/activities?limit=2&before=${first.next ?? ''}`)
    ).json()) as { items: { object: string }[]; next: string | null };
    expect(second.items.map((i) => i.object)).toEqual(['post:2', 'post:1']);
    const third = (await (
      await send(KEY_A, 'GET', `/v1/actors/alice@example.com/activities?limit=2&before=${second.next ?? ''}`)
    ).json()) as { items: { object: string }[]; next: string | null };
    expect(third.items.map((i) => i.object)).toEqual(['post:0']);
    expect(third.next).toBeNull();
    // A new activity shows on the first page at once: write-through drops the cached page.
    await send(KEY_A, 'POST', '/v1/activities', { actor: 'alice@example.com', verb: 'liked', object: 'post:9' });
    const fresh = (await (await send(KEY_A, 'GET', '/v1/actors/alice@example.com/activities?limit=1')).json()) as {
      items: { object: string }[];
    };
    expect(fresh.items.map((i) => i.object)).toEqual(['post:9']);
  });

  it('limits each client to its own rate, answering 429 with Retry-After', async () => {
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 45; i++) {
      const response = await send(KEY_B, 'GET', '/v1/counters/rl');
      statuses.push(response.status);
      if (response.status === 429) {
        retryAfter = response.headers.get('retry-after');
        expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      }
    }
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    expect(Number(retryAfter)).toBeGreaterThan(0);
    // Client A has its own budget.
    expect((await send(KEY_A, 'GET', '/v1/counters/rl')).status).toBe(200);
  });
});
