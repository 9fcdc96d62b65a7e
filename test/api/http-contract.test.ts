import { counterFingerprint } from '@app/events';
import { holding, idempotencyKey } from '@app/idempotency';
import { AppProcess, TestStack } from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const KEY = 'test-key-0123456789abcdef';

/**
 * Every bad-input row of docs/architecture.md section 4: the status, a problem-details body, and nothing reaching Kafka
 * or Postgres. Authentication is on (API_KEYS) so that 401 is covered too.
 */
describe('HTTP contract: bad input is refused and goes nowhere', () => {
  let stack: TestStack;
  let api: AppProcess;
  let base: string;

  beforeAll(async () => {
    stack = await TestStack.create();
    api = new AppProcess('api', {
      ...stack.env,
      API_KEYS: `${KEY}:client-a`,
      API_BODY_LIMIT_BYTES: String(64 * 1024),
      API_BATCH_MAX_ITEMS: '1000',
    });
    const port = Number(stack.env['API_PORT']);
    await api.ready(port);
    base = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    await api.stop();
    await stack.dispose();
  });

  const send = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, {
      method,
      headers: { 'x-api-key': KEY, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });

  const expectProblem = async (response: Response, status: number, field?: string) => {
    expect(response.status).toBe(status);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const problem = (await response.json()) as {
      type: string;
      title: string;
      status: number;
      errors?: { field: string }[];
    };
    expect(problem.status).toBe(status);
    expect(problem.type).toMatch(/^\/problems\//);
    expect(problem.title.length).toBeGreaterThan(0);
    if (field !== undefined) expect(problem.errors?.map((e) => e.field)).toContain(field);
  };

  const longName = 'n'.repeat(201);
  const increments = (n: number) => ({ increments: Array.from({ length: n }, (_, i) => ({ name: `c${i}`, by: 1 })) });

  it.each([
    ['a counter name with a space', '/v1/counters/bad%20name/increment', { by: 1 }, 'params.name'],
    ['a counter name of 201 characters', `/v1/counters/${longName}/increment`, { by: 1 }, 'params.name'],
    ['by = 0', '/v1/counters/ok/increment', { by: 0 }, 'body.by'],
    ['a fractional by', '/v1/counters/ok/increment', { by: 1.5 }, 'body.by'],
    ['by as a string', '/v1/counters/ok/increment', { by: '1' }, 'body.by'],
    ['by beyond the bound', '/v1/counters/ok/increment', { by: 1_000_001 }, 'body.by'],
    ['by beyond a safe integer', '/v1/counters/ok/increment', '{"by": 9007199254740993}', 'body.by'],
    ['an unknown field', '/v1/counters/ok/increment', { by: 1, extra: true }, 'body'],
    ['an array body', '/v1/counters/ok/increment', [1], 'body'],
    ['an empty batch', '/v1/counters/batch', { increments: [] }, 'body.increments'],
    ['a batch of 1001', '/v1/counters/batch', increments(1001), 'body.increments'],
    [
      'a bad item in a batch',
      '/v1/counters/batch',
      {
        increments: [
          { name: 'ok', by: 1 },
          { name: 'x y', by: 1 },
        ],
      },
      'body.increments.1.name',
    ],
    [
      'a repeated id in a batch',
      '/v1/counters/batch',
      {
        increments: [
          { name: 'a', id: 'k' },
          { name: 'b', id: 'k' },
        ],
      },
      'body.increments.1.id',
    ],
    ['an activity without actor', '/v1/activities', { verb: 'liked', object: 'post:1' }, 'body.actor'],
    [
      'an activity with a bad date',
      '/v1/activities',
      { actor: 'u1', verb: 'liked', object: 'p', occurredAt: 'yesterday' },
      'body.occurredAt',
    ],
    [
      'activity data that is an array',
      '/v1/activities',
      { actor: 'u1', verb: 'liked', object: 'p', data: [1] },
      'body.data',
    ],
    [
      'activity data over 16 KiB',
      '/v1/activities',
      { actor: 'u1', verb: 'liked', object: 'p', data: { s: 'x'.repeat(17_000) } },
      'body.data',
    ],
    [
      'a bad activity in a batch',
      '/v1/activities/batch',
      { activities: [{ actor: 'u1', verb: 'has space', object: 'p' }] },
      'body.activities.0.verb',
    ],
  ])('400 for %s', async (_label, path, body, field) => {
    await expectProblem(await send('POST', path, body), 400, field);
  });

  it('400 for a bad Idempotency-Key, and for an activity id that differs from it', async () => {
    await expectProblem(
      await send('POST', '/v1/counters/ok/increment', { by: 1 }, { 'idempotency-key': 'has space' }),
      400,
      'headers.idempotency-key',
    );
    await expectProblem(
      await send('POST', '/v1/activities', { id: 'a', actor: 'u', verb: 'v', object: 'o' }, { 'idempotency-key': 'b' }),
      400,
      'body.id',
    );
  });

  it('400 for bad JSON and for __proto__ keys', async () => {
    await expectProblem(await send('POST', '/v1/counters/ok/increment', '{"by": 1'), 400);
    await expectProblem(await send('POST', '/v1/counters/ok/increment', '{"__proto__": {"by": 5}}'), 400);
  });

  it('400 for bad feed parameters', async () => {
    await expectProblem(await send('GET', '/v1/actors/u1/activities?limit=0'), 400, 'query.limit');
    await expectProblem(await send('GET', '/v1/actors/u1/activities?limit=101'), 400, 'query.limit');
    await expectProblem(await send('GET', '/v1/actors/u1/activities?before=garbage'), 400, 'query.before');
    await expectProblem(await send('GET', '/v1/actors/u1/activities?page=2'), 400, 'query');
  });

  it('401 without an API key or with a wrong one', async () => {
    const none = await fetch(`${base}/v1/counters/ok/increment`, { method: 'POST' });
    await expectProblem(none, 401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    await expectProblem(await send('POST', '/v1/counters/ok/increment', { by: 1 }, { 'x-api-key': `${KEY}x` }), 401);
    await expectProblem(await send('GET', '/v1/counters/ok', undefined, { 'x-api-key': 'nope-nope-nope-nope' }), 401);
  });

  it('413 for a body over the limit', async () => {
    const big = JSON.stringify({ actor: 'u1', verb: 'v', object: 'o', data: { s: 'x'.repeat(70 * 1024) } });
    await expectProblem(await send('POST', '/v1/activities', big), 413);
  });

  it('415 for a body that is not JSON', async () => {
    await expectProblem(await send('POST', '/v1/counters/ok/increment', 'by=1', { 'content-type': 'text/plain' }), 415);
    await expectProblem(
      await send('POST', '/v1/counters/ok/increment', 'by=1', { 'content-type': 'application/x-www-form-urlencoded' }),
      415,
    );
  });

  it('422 for a key reused with another body, 409 while its first request is in flight', async () => {
    // The first use of the key is accepted; nothing of the conflicting requests below is applied.
    const first = await send('POST', '/v1/counters/idem/increment', { by: 2 }, { 'idempotency-key': 'k-422' });
    expect(first.status).toBe(202);
    await expectProblem(
      await send('POST', '/v1/counters/idem/increment', { by: 3 }, { 'idempotency-key': 'k-422' }),
      422,
    );
    await expectProblem(
      await send('POST', '/v1/counters/other/increment', { by: 2 }, { 'idempotency-key': 'k-422' }),
      422,
    );
    // A request holding a key in another API process: its in-flight record, as that process wrote it.
    await stack.redis.set(
      `${stack.keyPrefix}${idempotencyKey('client-a', 'k-409')}`,
      holding(counterFingerprint('idem', 2)),
      'PX',
      60_000,
    );
    await expectProblem(
      await send('POST', '/v1/counters/idem/increment', { by: 2 }, { 'idempotency-key': 'k-409' }),
      409,
    );
    // Keys are per client: the same key from another client would be a different event (see event ids).
    const replay = await send('POST', '/v1/counters/idem/increment', { by: 2 }, { 'idempotency-key': 'k-422' });
    expect(replay.status).toBe(202);
    expect(await replay.json()).toEqual(await first.json());
  });

  it('404 problem for an unknown route', async () => {
    await expectProblem(await send('GET', '/v1/nothing-here'), 404);
  });

  it('let none of the refused requests reach Kafka or Postgres', async () => {
    const admin = stack.kafka.admin();
    await admin.connect();
    try {
      const counters = await admin.fetchTopicOffsets(stack.topics.counters);
      const activities = await admin.fetchTopicOffsets(stack.topics.activities);
      // Exactly one event: the accepted first use of k-422.
      expect(counters.reduce((n, p) => n + Number(p.high), 0)).toBe(1);
      expect(activities.reduce((n, p) => n + Number(p.high), 0)).toBe(0);
    } finally {
      await admin.disconnect();
    }
    expect(await stack.query('SELECT name FROM counters')).toEqual([]);
    expect(await stack.query('SELECT id FROM activities')).toEqual([]);
    expect(await stack.query('SELECT event_id FROM processed_events')).toEqual([]);
  });
});
