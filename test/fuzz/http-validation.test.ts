import { AppProcess, TestStack, freePort, readEvents, readTopic, waitFor, waitForLagZero } from '@app/testing';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const KEY = 'fuzz-key-0123456789abcdef';
const CLIENT = 'fuzzer';
const BODY_LIMIT = 16 * 1024;
const BATCH_MAX = 20;
const MAX_INCREMENT = 1_000_000;

/** Run counts of the properties below (docs/chaos.md lists them too). */
const RUNS = { increment: 400, counterBatch: 200, activity: 400, activityBatch: 150, routes: 250 };

/** What a request sent: its method, path, headers and raw body bytes (undefined: no body). */
interface Sent {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
}

/** An acknowledged write, as the event it must have become. */
type Acked =
  | { type: 'counter.incremented'; key: string; by: number }
  | { type: 'activity.recorded'; key: string; verb: string; object: string; data: unknown };

// ---- arbitraries ----------------------------------------------------------------------------------------------

/** Header values fetch can send (Latin-1 without controls and DEL), some of them valid idempotency keys. */
const headerSafe = fc
  .string({
    unit: fc
      .integer({ min: 0x20, max: 0xff })
      .filter((c) => c !== 0x7f)
      .map((c) => String.fromCharCode(c)),
    maxLength: 260,
  })
  .filter((v) => {
    try {
      new Headers({ x: v });
      return v.length > 0 && v.trim() === v;
    } catch {
      return false;
    }
  });
const validKey = fc.stringMatching(/^[\x21-\x7e]{1,200}$/);
/** A few keys shared by all runs, so that repeats (same body: the first answer; another body: 422) happen. */
const pooledKey = fc.constantFrom('pool-a', 'pool-b', 'pool-c', 'pool-d');
const idempotencyKey = fc.option(
  fc.oneof(
    { weight: 3, arbitrary: validKey },
    { weight: 2, arbitrary: pooledKey },
    { weight: 2, arbitrary: headerSafe },
    fc.string({ minLength: 201, maxLength: 260, unit: fc.constantFrom('k', '-', '1') }),
  ),
  { nil: undefined, freq: 3 },
);

const validName = fc.stringMatching(/^[A-Za-z0-9:_.-]{1,40}$/);
/** Strings of any kind: every code point, lone surrogates and NUL included. */
const anyString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.string({ unit: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)), maxLength: 3 }),
  fc.constantFrom('', ' ', '\u0000', 'a\u0000b', '..', '%', '%00', 'a/b', 'ünïcödé', '😀', '__proto__', 'constructor'),
);
/** Percent-encodes the UTF-8 bytes of a string (encodeURIComponent throws on lone surrogates). */
const encodePath = (s: string) =>
  [...Buffer.from(s, 'utf8')]
    .map((b) =>
      /[A-Za-z0-9_.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0')}`,
    )
    .join('');
const longString = (min: number, max: number) => fc.string({ minLength: min, maxLength: max, unit: fc.constant('n') });
/** A counter name as a path segment: mostly encoded, sometimes raw bytes that a router must survive. */
const namePath = fc.oneof(
  { weight: 4, arbitrary: validName.map(encodePath) },
  { weight: 3, arbitrary: anyString.map(encodePath) },
  { weight: 1, arbitrary: longString(195, 210) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('%', '%zz', '%E0%A4%A', '..', '%2e%2e', '%2F', 'a%00b', '%C0%AF', ';', '*', '~'),
  },
);

const jsonNumber = fc.oneof(
  fc.integer({ min: -2 * MAX_INCREMENT, max: 2 * MAX_INCREMENT }),
  fc.double(),
  fc.constantFrom(
    0,
    -0,
    1,
    -1,
    1.5,
    MAX_INCREMENT,
    MAX_INCREMENT + 1,
    -MAX_INCREMENT,
    2 ** 53,
    Number.MAX_SAFE_INTEGER,
  ),
);
const anyJson = fc.jsonValue({ maxDepth: 3, stringUnit: 'binary' });
const byValue = fc.oneof({ weight: 4, arbitrary: jsonNumber }, anyJson);

/** A date-time: valid ones of any year and offset (extremes included), and near misses. */
const dateTime = fc.oneof(
  fc
    .record({
      year: fc.integer({ min: 0, max: 9999 }),
      month: fc.integer({ min: 1, max: 12 }),
      day: fc.integer({ min: 1, max: 28 }),
      hour: fc.integer({ min: 0, max: 23 }),
      offset: fc.constantFrom('Z', '+00:00', '+01:00', '-01:00', '+14:00', '-12:00', '+05:30'),
    })
    .map(
      ({ year, month, day, hour, offset }) =>
        `${String(year).padStart(4, '0')}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}T${String(hour).padStart(2, '0')}:30:00${offset}`,
    ),
  fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
  fc.constantFrom(
    '0000-01-01T00:00:00+01:00',
    '0001-01-01T00:00:00Z',
    '9999-12-31T23:30:00-01:00',
    '2026-02-30T00:00:00Z',
    '2026-01-01',
    '2026-01-01T00:00:00',
    'yesterday',
  ),
  anyString,
  jsonNumber,
);
const jsonData = fc.oneof(
  fc.constant(null),
  fc.dictionary(anyString, anyJson, { maxKeys: 5 }),
  fc.dictionary(validName, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 5 }),
  anyJson,
  longString(16_300, 17_000).map((s) => ({ s })),
);
const activity = fc.record(
  {
    id: fc.oneof(validKey, pooledKey, anyString),
    actor: fc.oneof({ weight: 3, arbitrary: fc.stringMatching(/^[A-Za-z0-9:_.@-]{1,30}$/) }, anyString),
    verb: fc.oneof({ weight: 3, arbitrary: fc.stringMatching(/^[A-Za-z0-9:_.-]{1,20}$/) }, anyString),
    object: fc.oneof(
      { weight: 3, arbitrary: fc.string({ minLength: 1, maxLength: 40 }) },
      anyString,
      longString(495, 505),
    ),
    occurredAt: dateTime,
    data: jsonData,
    extra: anyJson,
  },
  { requiredKeys: ['actor', 'verb', 'object'] },
);

/**
 * Near-valid writes: the right shape, content type and key, with edge values where the contract allows anything
 * (any code point in `object` and `data`, any year and offset of `occurredAt`, the largest deltas and longest
 * names). Most are accepted, which is what the end-to-end check below needs: each must become a valid event that
 * the consumer can apply.
 */
const edgyIncrement = fc.record({
  name: fc.oneof(validName, fc.stringMatching(/^[A-Za-z0-9:_.-]{190,200}$/)),
  by: fc.oneof(
    fc.integer({ min: -MAX_INCREMENT, max: MAX_INCREMENT }).filter((n) => n !== 0),
    fc.constantFrom(MAX_INCREMENT, -MAX_INCREMENT, 1, -1),
  ),
});
const edgyActivity = fc.record(
  {
    actor: fc.stringMatching(/^[A-Za-z0-9:_.@-]{1,30}$/),
    verb: fc.stringMatching(/^[A-Za-z0-9:_.-]{1,20}$/),
    object: fc.oneof(
      fc.string({ minLength: 1, maxLength: 40 }),
      anyString.filter((o) => o.length > 0 && o.length <= 500),
      longString(490, 500),
    ),
    occurredAt: dateTime.filter((d) => typeof d === 'string' && /^\d{4}-\d\d-\d\dT/.test(d)),
    data: fc.oneof(fc.constant(null), fc.dictionary(anyString, anyJson, { maxKeys: 5 })),
  },
  { requiredKeys: ['actor', 'verb', 'object'] },
);
const wellFormed = (
  request: fc.Arbitrary<{ path: string; body: unknown }>,
  key: fc.Arbitrary<string | undefined> = fc.constant(undefined),
): fc.Arbitrary<Sent> =>
  fc.tuple(request, key).map(([r, k]) => ({
    method: 'POST',
    path: r.path,
    body: Buffer.from(JSON.stringify(r.body)),
    headers: {
      'x-api-key': KEY,
      'content-type': 'application/json',
      ...(k === undefined ? {} : { 'idempotency-key': k }),
    },
  }));
/** Items with ids unique within their batch. */
const batchOf = <T>(item: fc.Arbitrary<T>) =>
  fc.uniqueArray(fc.tuple(validKey, item), { minLength: 1, maxLength: BATCH_MAX, selector: ([id]) => id });

/** The body as bytes: JSON of the value, broken JSON, junk, nothing, or JSON padded past the body limit. */
const bodyOf = (value: fc.Arbitrary<unknown>) =>
  fc.oneof(
    { weight: 6, arbitrary: value.map((v) => Buffer.from(JSON.stringify(v) ?? 'null')) },
    { weight: 1, arbitrary: value.map((v) => Buffer.from((JSON.stringify(v) ?? 'null').slice(0, -1))) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)) },
    { weight: 1, arbitrary: fc.constantFrom(undefined, Buffer.alloc(0), Buffer.from('{"__proto__":{"by":5}}')) },
    {
      weight: 1,
      arbitrary: fc
        .integer({ min: BODY_LIMIT - 64, max: BODY_LIMIT + 4096 })
        .map((n) => Buffer.from(JSON.stringify({ by: 1, pad: 'x'.repeat(n) }))),
    },
  );

const contentType = fc.option(
  fc.oneof(
    { weight: 6, arbitrary: fc.constant('application/json') },
    fc.constantFrom(
      'application/json; charset=utf-8',
      'APPLICATION/JSON',
      'application/json; charset=latin1',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/problem+json',
      'application/octet-stream',
    ),
    headerSafe,
  ),
  { nil: undefined, freq: 8 },
);

/** Authentication: mostly the valid key; sometimes none, a wrong one, a Bearer token. */
const auth = fc.oneof(
  { weight: 8, arbitrary: fc.constant<Record<string, string>>({ 'x-api-key': KEY }) },
  fc.constantFrom<Record<string, string>>(
    {},
    { 'x-api-key': `${KEY}x` },
    { authorization: `Bearer ${KEY}` },
    { authorization: 'Bearer' },
    { authorization: `Basic ${KEY}` },
  ),
  headerSafe.map((v) => ({ 'x-api-key': v })),
);

const request = (
  method: string,
  path: fc.Arbitrary<string>,
  body: fc.Arbitrary<Buffer | undefined>,
  key: fc.Arbitrary<string | undefined> = fc.constant(undefined),
): fc.Arbitrary<Sent> =>
  fc.record({ path, body, type: contentType, key, auth }).map(({ path: p, body: b, type, key: k, auth: a }) => ({
    method,
    path: p,
    body: b,
    headers: {
      ...a,
      ...(type === undefined ? {} : { 'content-type': type }),
      ...(k === undefined ? {} : { 'idempotency-key': k }),
    },
  }));

// ---- the test --------------------------------------------------------------------------------------------------

/**
 * Property-based tests of the API's input handling against a real API process (fast-check): random counter names,
 * bodies (any JSON, broken JSON, junk bytes, bodies past the limit), content types, idempotency keys and API keys.
 * Every answer is a 2xx or an RFC 9457 problem with a 4xx status, never a 5xx; and nothing the API did not
 * acknowledge, nor anything invalid, reaches Kafka: afterwards every message of both topics decodes as a valid
 * event (decodeRecord) and is one the API acknowledged. A consumer runs alongside: every acknowledged write is
 * applied (nothing is acknowledged that Postgres then refuses and dead-letters).
 */
describe('fuzzing the HTTP API (fast-check)', () => {
  let stack: TestStack;
  let api: AppProcess;
  let consumer: AppProcess;
  let base: string;
  const acked = new Map<string, Acked>();
  const statuses = new Map<number, number>();

  beforeAll(async () => {
    stack = await TestStack.create();
    const env = {
      ...stack.env,
      LOG_LEVEL: 'warn',
      API_KEYS: `${KEY}:${CLIENT}`,
      API_BODY_LIMIT_BYTES: String(BODY_LIMIT),
      API_BATCH_MAX_ITEMS: String(BATCH_MAX),
      API_MAX_INCREMENT: String(MAX_INCREMENT),
    };
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

  async function send(sent: Sent): Promise<{ status: number; type: string; body: unknown }> {
    const response = await fetch(`${base}${sent.path}`, {
      method: sent.method,
      headers: sent.headers,
      ...(sent.body === undefined ? {} : { body: sent.body }),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await response.text();
    statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // Checked below: every answer must be JSON.
    }
    return { status: response.status, type: response.headers.get('content-type') ?? '', body };
  }

  /** A 2xx with a JSON body, or a 4xx problem whose `status` is the HTTP status: never anything else. */
  function expectWellFormed(sent: Sent, answer: { status: number; type: string; body: unknown }): void {
    const context = `${sent.method} ${sent.path} -> ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`;
    expect(api.running, 'the API process is up').toBe(true);
    expect(answer.status, context).toBeGreaterThanOrEqual(200);
    expect(answer.status, context).toBeLessThan(500);
    if (answer.status < 300) {
      expect(answer.type, context).toMatch(/^application\/json/);
      expect(typeof answer.body, context).toBe('object');
      return;
    }
    expect(answer.status, context).toBeGreaterThanOrEqual(400);
    expect(answer.type, context).toMatch(/^application\/problem\+json/);
    const problem = answer.body as { type?: unknown; title?: unknown; status?: unknown };
    expect(problem.status, context).toBe(answer.status);
    expect(String(problem.type), context).toMatch(/^\/problems\/[a-z-]+$/);
    expect(typeof problem.title === 'string' && problem.title.length > 0, context).toBe(true);
  }

  const parse = (sent: Sent): unknown => {
    try {
      return JSON.parse(sent.body?.toString('utf8') ?? '{}');
    } catch {
      return undefined;
    }
  };

  it(`increments: ${RUNS.increment} random requests, never a 5xx`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          request(
            'POST',
            namePath.map((n) => `/v1/counters/${n}/increment`),
            bodyOf(fc.record({ by: byValue }, { requiredKeys: [] })),
            idempotencyKey,
          ),
          wellFormed(
            edgyIncrement.map((i) => ({ path: `/v1/counters/${i.name}/increment`, body: { by: i.by } })),
            fc.option(validKey, { nil: undefined }),
          ),
        ),
        async (sent) => {
          const answer = await send(sent);
          expectWellFormed(sent, answer);
          if (answer.status < 300) {
            const result = answer.body as { eventId: string; name: string };
            const by = (parse(sent) as { by?: number } | undefined)?.by ?? 1;
            acked.set(result.eventId, { type: 'counter.incremented', key: result.name, by });
          }
        },
      ),
      { numRuns: RUNS.increment },
    );
  });

  it(`counter batches: ${RUNS.counterBatch} random requests, never a 5xx`, async () => {
    const item = fc.record(
      {
        name: fc.oneof({ weight: 3, arbitrary: validName }, anyString),
        by: byValue,
        id: fc.oneof(validKey, pooledKey, anyString),
        x: anyJson,
      },
      { requiredKeys: ['name'] },
    );
    const batch = fc.oneof(
      { weight: 4, arbitrary: fc.record({ increments: fc.array(item, { minLength: 0, maxLength: BATCH_MAX + 3 }) }) },
      fc.record({ increments: anyJson }),
      anyJson,
    );
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          request('POST', fc.constant('/v1/counters/batch'), bodyOf(batch)),
          wellFormed(
            batchOf(edgyIncrement).map((items) => ({
              path: '/v1/counters/batch',
              body: { increments: items.map(([id, i]) => ({ ...i, id })) },
            })),
          ),
        ),
        async (sent) => {
          const answer = await send(sent);
          expectWellFormed(sent, answer);
          if (answer.status < 300) {
            const items = (parse(sent) as { increments: { name: string; by?: number }[] }).increments;
            const { results } = answer.body as { results: { eventId: string; status: string }[] };
            expect(results).toHaveLength(items.length);
            results.forEach((r, i) => {
              if (r.status === 'accepted' || r.status === 'duplicate') {
                acked.set(r.eventId, { type: 'counter.incremented', key: items[i]?.name ?? '', by: items[i]?.by ?? 1 });
              }
            });
          }
        },
      ),
      { numRuns: RUNS.counterBatch },
    );
  });

  const ackActivity = (id: string, input: Record<string, unknown>) =>
    acked.set(id, {
      type: 'activity.recorded',
      key: String(input['actor']),
      verb: String(input['verb']),
      object: String(input['object']),
      data: input['data'] ?? null,
    });

  it(`activities: ${RUNS.activity} random requests, never a 5xx`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          request('POST', fc.constant('/v1/activities'), bodyOf(activity), idempotencyKey),
          wellFormed(
            edgyActivity.map((a) => ({ path: '/v1/activities', body: a })),
            fc.option(validKey, { nil: undefined }),
          ),
        ),
        async (sent) => {
          const answer = await send(sent);
          expectWellFormed(sent, answer);
          if (answer.status < 300)
            ackActivity((answer.body as { id: string }).id, parse(sent) as Record<string, unknown>);
        },
      ),
      { numRuns: RUNS.activity },
    );
  });

  it(`activity batches: ${RUNS.activityBatch} random requests, never a 5xx`, async () => {
    const batch = fc.oneof(
      {
        weight: 4,
        arbitrary: fc.record({ activities: fc.array(activity, { minLength: 0, maxLength: BATCH_MAX + 3 }) }),
      },
      anyJson,
    );
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          request('POST', fc.constant('/v1/activities/batch'), bodyOf(batch)),
          wellFormed(
            batchOf(edgyActivity).map((items) => ({
              path: '/v1/activities/batch',
              body: { activities: items.map(([id, a]) => ({ ...a, id })) },
            })),
          ),
        ),
        async (sent) => {
          const answer = await send(sent);
          expectWellFormed(sent, answer);
          if (answer.status < 300) {
            const items = (parse(sent) as { activities: Record<string, unknown>[] }).activities;
            const { results } = answer.body as { results: { id: string; status: string }[] };
            expect(results).toHaveLength(items.length);
            results.forEach((r, i) => {
              if ((r.status === 'accepted' || r.status === 'duplicate') && items[i]) ackActivity(r.id, items[i]);
            });
          }
        },
      ),
      { numRuns: RUNS.activityBatch },
    );
  });

  it(`reads and unknown routes: ${RUNS.routes} random requests, never a 5xx`, async () => {
    const query = fc
      .record(
        {
          limit: fc.oneof(jsonNumber.map(String), anyString),
          before: fc.oneof(anyString, fc.base64String()),
          other: anyString,
        },
        { requiredKeys: [] },
      )
      .map((q) => new URLSearchParams(Object.entries(q).map(([k, v]): [string, string] => [k, String(v)])).toString());
    const path = fc.oneof(
      namePath.map((n) => `/v1/counters/${n}`),
      fc.tuple(namePath, query).map(([actor, q]) => `/v1/actors/${actor}/activities?${q}`),
      fc.webPath().map((p) => `/v1${p}`),
      fc.constantFrom('/health/ready', '/health/live', '/metrics', '/', '/v1', '/v1/counters', '/v2/counters/x'),
    );
    const method = fc.constantFrom('GET', 'GET', 'GET', 'DELETE', 'PUT', 'PATCH', 'OPTIONS', 'POST');
    await fc.assert(
      fc.asyncProperty(method, path, auth, async (m, p, a) => {
        const sent: Sent = { method: m, path: p, headers: a, body: undefined };
        const answer = await send(sent);
        // /metrics answers in Prometheus' text format, health in Terminus' JSON: both 2xx, neither a problem.
        if (p === '/metrics' && answer.status === 200) return;
        if (p.startsWith('/health/') && answer.status < 300) return;
        expectWellFormed(sent, answer);
      }),
      { numRuns: RUNS.routes },
    );
  });

  it('published exactly the acknowledged writes, each a valid event, and the consumer applied them all', async () => {
    expect(api.running).toBe(true);
    expect(acked.size).toBeGreaterThan(50);
    // readEvents throws on a record that does not decode: nothing invalid may reach Kafka.
    const byTopic = await Promise.all([
      readEvents(stack.kafka, stack.topics.counters),
      readEvents(stack.kafka, stack.topics.activities),
    ]);
    const published = new Set<string>();
    for (const { event } of byTopic.flat()) {
      published.add(event.id);
      const expected = acked.get(event.id);
      expect(expected, `event ${event.id} was never acknowledged`).toBeDefined();
      expect(event.type).toBe(expected?.type);
      expect(event.key).toBe(expected?.key);
      if (event.type === 'counter.incremented' && expected?.type === 'counter.incremented')
        expect(event.by).toBe(expected.by);
      if (event.type === 'activity.recorded' && expected?.type === 'activity.recorded') {
        expect({ verb: event.verb, object: event.object, data: event.data }).toEqual({
          verb: expected.verb,
          object: expected.object,
          data: expected.data,
        });
      }
    }
    // Write-behind: every acknowledged write is in Kafka.
    expect([...acked.keys()].filter((id) => !published.has(id))).toEqual([]);

    await waitForLagZero(stack.kafka, stack.groupId, [stack.topics.counters, stack.topics.activities], 60_000).catch(
      (error: unknown) => {
        throw new Error(`${(error as Error).message}\n--- consumer ---\n${consumer.text.slice(-6000)}`);
      },
    );
    const letters = [
      ...(await readTopic(stack.kafka, `${stack.topics.counters}.dlq`)),
      ...(await readTopic(stack.kafka, `${stack.topics.activities}.dlq`)),
    ];
    expect(
      letters.map(
        (l) =>
          `${l.headers['dlq-error-class']}: ${l.headers['dlq-error-message']}: ${l.value?.toString().slice(0, 200)}`,
      ),
      'acknowledged writes that Postgres refused',
    ).toEqual([]);
    const expectedSums = new Map<string, number>();
    for (const a of acked.values())
      if (a.type === 'counter.incremented') expectedSums.set(a.key, (expectedSums.get(a.key) ?? 0) + a.by);
    await waitFor(
      async () => {
        const rows = await stack.query<{ name: string; value: string }>('SELECT name, value FROM counters');
        return rows.length === expectedSums.size && rows.every((r) => Number(r.value) === expectedSums.get(r.name));
      },
      { description: 'Postgres counters equal to the acknowledged increments' },
    );
    const activityIds = await stack.query<{ id: string }>('SELECT id FROM activities');
    expect(new Set(activityIds.map((r) => r.id))).toEqual(
      new Set([...acked].filter(([, a]) => a.type === 'activity.recorded').map(([id]) => id)),
    );
    console.log(
      `HTTP fuzz answers by status: ${JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))}`,
    );
  });
});
