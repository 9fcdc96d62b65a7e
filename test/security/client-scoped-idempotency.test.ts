import { AppProcess, TestStack, waitFor } from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const KEY_A = 'scoped-key-of-alpha-0123456789';
const KEY_B = 'scoped-key-of-bravo-0123456789';

/**
 * Issue 8, security: idempotency keys are scoped per client (API key). Client B sending the same Idempotency-Key (or
 * batch item id, or activity id) as client A makes a different event: B never gets A's stored answer, is not told
 * 409 or 422 because of A's record, and both events are applied, once each, in Postgres.
 */
describe('idempotency keys scoped per client', () => {
  let stack: TestStack;
  let api: AppProcess;
  let consumer: AppProcess;
  let base: string;

  beforeAll(async () => {
    stack = await TestStack.create();
    const env: Record<string, string> = { ...stack.env, API_KEYS: `${KEY_A}:alpha,${KEY_B}:bravo` };
    api = new AppProcess('api', env);
    consumer = new AppProcess('consumer', env);
    await Promise.all([api.ready(Number(env['API_PORT'])), consumer.ready(Number(env['CONSUMER_PORT']))]);
    base = `http://127.0.0.1:${env['API_PORT']}`;
  });
  afterAll(async () => {
    await Promise.all([api?.stop(), consumer?.stop()]);
    await stack?.dispose();
  });

  const post = async (path: string, apiKey: string, body: unknown, idempotencyKey?: string) => {
    const response = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-api-key': apiKey,
        ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
      },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  /** An event id without its fingerprint (`<client>:<key>`), and a matcher of the ids of one client and key. */
  const unprinted = (id: string) => id.replace(/#[\w-]{22}$/, '');
  const scopedAs = (clientKey: string) => expect.stringMatching(new RegExp(`^${clientKey}#[\\w-]{22}$`)) as unknown;
  const postgresValue = async (name: string) =>
    (await stack.query<{ value: string }>('SELECT value FROM counters WHERE name = $1', [name]))[0]?.value;

  it("gives client B's request with client A's key its own event and answer", async () => {
    const name = `scoped:${stack.id}`;
    const a = await post(`/v1/counters/${name}/increment`, KEY_A, { by: 1 }, 'shared-key');
    expect(a.status).toBe(202);
    expect(a.body).toMatchObject({ eventId: scopedAs('alpha:shared-key'), value: 1 });

    // Same key, same body, from B: not A's stored answer but a new event.
    const b = await post(`/v1/counters/${name}/increment`, KEY_B, { by: 1 }, 'shared-key');
    expect(b.status).toBe(202);
    expect(b.body).toMatchObject({ eventId: scopedAs('bravo:shared-key'), value: 2 });

    // Same key, another body, from B's point of view a new key too: no 422 from A's record.
    const other = `${name}-other`;
    const b2 = await post(`/v1/counters/${other}/increment`, KEY_B, { by: 7 }, 'shared-key-2');
    const a2 = await post(`/v1/counters/${name}/increment`, KEY_A, { by: 3 }, 'shared-key-2');
    expect([b2.status, a2.status]).toEqual([202, 202]);
    expect(a2.body).toMatchObject({ eventId: scopedAs('alpha:shared-key-2'), name, value: 5 });

    // Each client's repeat gets its own first answer back, and applies nothing.
    const aAgain = await post(`/v1/counters/${name}/increment`, KEY_A, { by: 1 }, 'shared-key');
    const bAgain = await post(`/v1/counters/${name}/increment`, KEY_B, { by: 1 }, 'shared-key');
    expect(aAgain.body).toEqual(a.body);
    expect(bAgain.body).toEqual(b.body);
    // A's key with B's other body is still a conflict for A alone.
    expect((await post(`/v1/counters/${name}/increment`, KEY_A, { by: 9 }, 'shared-key')).status).toBe(422);

    const read = (await (await fetch(`${base}/v1/counters/${name}`, { headers: { 'x-api-key': KEY_A } })).json()) as {
      value: number;
    };
    expect(read.value).toBe(5);
    // Applied once each in Postgres: 1 (A) + 1 (B) + 3 (A); 7 on the other counter (B).
    await waitFor(async () => (await postgresValue(name)) === '5' && (await postgresValue(other)) === '7', {
      timeoutMs: 60_000,
      description: 'both clients\u2019 events applied',
    });
    const applied = await stack.query<{ event_id: string }>(
      "SELECT event_id FROM processed_events WHERE event_id LIKE '%:shared-key%' ORDER BY event_id",
    );
    expect(applied.map((r) => unprinted(r.event_id))).toEqual([
      'alpha:shared-key',
      'alpha:shared-key-2',
      'bravo:shared-key',
      'bravo:shared-key-2',
    ]);
  });

  it('scopes batch item ids and activity ids the same way', async () => {
    const name = `scoped-batch:${stack.id}`;
    const batch = (apiKey: string) =>
      post('/v1/counters/batch', apiKey, {
        increments: [
          { name, by: 2, id: 'item-1' },
          { name, by: 2, id: 'item-2' },
        ],
      });
    const a = await batch(KEY_A);
    const b = await batch(KEY_B);
    const results = (r: { body: Record<string, unknown> }) =>
      (r.body['results'] as { eventId: string; status: string }[]).map((x) => `${unprinted(x.eventId)}=${x.status}`);
    expect(results(a)).toEqual(['alpha:item-1=accepted', 'alpha:item-2=accepted']);
    expect(results(b)).toEqual(['bravo:item-1=accepted', 'bravo:item-2=accepted']);
    // Repeats are duplicates within each client's own scope.
    expect(results(await batch(KEY_B))).toEqual(['bravo:item-1=duplicate', 'bravo:item-2=duplicate']);

    const activity = { id: 'act-1', actor: `actor-${stack.id}`, verb: 'liked', object: 'post:1' };
    const actA = await post('/v1/activities', KEY_A, activity);
    const actB = await post('/v1/activities', KEY_B, activity);
    expect([actA.body['id'], actB.body['id']].map((id) => unprinted(String(id)))).toEqual([
      'alpha:act-1',
      'bravo:act-1',
    ]);

    await waitFor(async () => (await postgresValue(name)) === '8', {
      timeoutMs: 60_000,
      description: 'the four batch items applied',
    });
    await waitFor(
      async () =>
        (await stack.query<{ id: string }>('SELECT id FROM activities WHERE actor = $1 ORDER BY id', [activity.actor]))
          .map((r) => unprinted(r.id))
          .join(',') === 'alpha:act-1,bravo:act-1',
      { timeoutMs: 60_000, description: 'both activities stored' },
    );
  });

  it("keeps each client's records under its own Redis key", async () => {
    const keys = await stack.redis.keys(`${stack.keyPrefix}idem:*shared-key`);
    expect(keys.map((k) => k.slice(stack.keyPrefix.length)).sort()).toEqual([
      'idem:alpha:shared-key',
      'idem:bravo:shared-key',
    ]);
  });
});
