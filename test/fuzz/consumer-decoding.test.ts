import { randomBytes } from 'node:crypto';
import { decodeEvent } from '@app/events';
import { AppProcess, TestStack, readTopic, scrapeMetrics, waitFor } from '@app/testing';
import fc from 'fast-check';
import type { IHeaders, Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const PARTITIONS = 3;
/** Run count of the property (docs/chaos.md lists it too); each run sends up to MAX_POISON messages. */
const RUNS = 30;
const MAX_POISON = 25;

interface Poison {
  topic: 'counters' | 'activities';
  partition: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: IHeaders;
  /** What it is, for the failure message. */
  label: string;
}

// ---- arbitraries ----------------------------------------------------------------------------------------------

const anyJson = fc.jsonValue({ maxDepth: 3, stringUnit: 'binary' });
const validName = fc.stringMatching(/^[A-Za-z0-9:_.-]{1,40}$/);
const printable = fc.stringMatching(/^[\x21-\x7e]{1,40}$/);

const counterEnvelope = fc
  .record({ id: printable, key: validName, by: fc.integer({ min: -1000, max: 1000 }).filter((n) => n !== 0) })
  .map((c): Record<string, unknown> => ({ v: 1, type: 'counter.incremented', ts: Date.now(), ...c }));
const activityEnvelope = fc
  .record({
    id: printable,
    key: fc.stringMatching(/^[A-Za-z0-9:_.@-]{1,30}$/),
    verb: fc.stringMatching(/^[A-Za-z0-9:_.-]{1,20}$/),
    object: fc.string({ minLength: 1, maxLength: 40 }),
    data: fc.option(fc.dictionary(validName, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }), { nil: null }),
  })
  .map((a): Record<string, unknown> => ({
    v: 1,
    type: 'activity.recorded',
    ts: Date.now(),
    occurredAt: new Date().toISOString(),
    ...a,
  }));
const FIELDS = ['v', 'id', 'type', 'key', 'ts', 'by', 'verb', 'object', 'occurredAt', 'data'] as const;
const oddValue = fc.oneof(
  anyJson,
  fc.constantFrom(0, -1, 1.5, 2 ** 60, 2, '', ' ', 'x'.repeat(501), null, [], {}, '\u0000', 'counter.reset', '1'),
);
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('delete' as const), field: fc.constantFrom(...FIELDS) }),
  fc.record({ kind: fc.constant('set' as const), field: fc.constantFrom(...FIELDS, 'extra'), value: oddValue }),
);
/** A real envelope with one to three fields removed, retyped or added. */
const mutatedEnvelope = fc
  .tuple(fc.oneof(counterEnvelope, activityEnvelope), fc.array(mutation, { minLength: 1, maxLength: 3 }))
  .map(([envelope, mutations]) => {
    const out = { ...envelope };
    for (const m of mutations) {
      if (m.kind === 'delete') delete out[m.field];
      else out[m.field] = m.value;
    }
    return Buffer.from(JSON.stringify(out));
  });
/** Envelopes broken as bytes: truncated, wrapped, prefixed, with junk or invalid UTF-8 inside. */
const brokenBytes = fc
  .tuple(
    fc.oneof(counterEnvelope, activityEnvelope).map((e) => Buffer.from(JSON.stringify(e))),
    fc.constantFrom('truncate', 'array', 'bom', 'trailing', 'invalid-utf8', 'double-encoded'),
    fc.nat(),
  )
  .map(([bytes, how, n]) => {
    switch (how) {
      case 'truncate':
        return bytes.subarray(0, n % bytes.length);
      case 'array':
        return Buffer.concat([Buffer.from('['), bytes, Buffer.from(']')]);
      case 'bom':
        return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes]);
      case 'trailing':
        return Buffer.concat([bytes, Buffer.from('}garbage')]);
      case 'invalid-utf8': {
        const at = n % bytes.length;
        return Buffer.concat([bytes.subarray(0, at), Buffer.from([0xc0, 0xaf, 0xff]), bytes.subarray(at)]);
      }
      case 'double-encoded':
        return Buffer.from(JSON.stringify(bytes.toString('utf8')));
      default:
        return bytes;
    }
  });
/**
 * Schema-valid activities that Postgres refuses as data: year 0 (22008), U+0000 inside `data` (22P05) and an
 * unpaired surrogate inside `data` (22P02). Not invalid events: they go through the apply, the halving down to the
 * record, then the dead-letter topic.
 */
const unapplicable = activityEnvelope.chain((e) =>
  fc.constantFrom(
    Buffer.from(JSON.stringify({ ...e, occurredAt: '0000-06-01T00:00:00Z' })),
    Buffer.from(JSON.stringify({ ...e, data: { note: 'nul \u0000 inside' } })),
    Buffer.from(JSON.stringify({ ...e, data: { note: 'unpaired \ud800 surrogate' } })),
  ),
);

const poisonValue = fc
  .oneof(
    { weight: 3, arbitrary: mutatedEnvelope.map((v) => ({ value: v, label: 'mutated envelope' })) },
    { weight: 2, arbitrary: brokenBytes.map((v) => ({ value: v, label: 'broken bytes' })) },
    {
      weight: 2,
      arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => ({ value: Buffer.from(b), label: 'random bytes' })),
    },
    {
      weight: 1,
      arbitrary: anyJson.map((j) => ({ value: Buffer.from(JSON.stringify(j)), label: 'random JSON' })),
    },
    {
      weight: 1,
      arbitrary: fc
        .integer({ min: 50_000, max: 200_000 })
        .map((n) => ({ value: randomBytes(n), label: `${n} random bytes` })),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom({ value: null, label: 'tombstone' }, { value: Buffer.alloc(0), label: 'empty' }),
    },
  )
  // Only what the consumer must refuse: a mutation can leave a valid event behind.
  .filter(({ value }) => !decodeEvent(value).ok)
  .map((p) => ({ ...p, unapplicable: false }));
const poisonOrUnapplicable = fc.oneof(
  { weight: 9, arbitrary: poisonValue },
  {
    weight: 1,
    arbitrary: unapplicable.map((value) => ({
      value: value,
      label: 'unapplicable',
      unapplicable: true,
    })),
  },
);

const poison: fc.Arbitrary<Poison> = fc
  .record({
    topic: fc.constantFrom('counters' as const, 'activities' as const),
    partition: fc.integer({ min: 0, max: PARTITIONS - 1 }),
    key: fc.oneof(
      fc.constant(null),
      validName.map((k) => Buffer.from(k)),
      fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
    ),
    headers: fc.dictionary(
      fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/).filter((h) => !h.startsWith('dlq-')),
      fc.uint8Array({ maxLength: 20 }).map((b) => Buffer.from(b)),
      { maxKeys: 3 },
    ),
    body: poisonOrUnapplicable,
  })
  .map(({ body, ...rest }) => ({ ...rest, value: body.value, label: body.label }));

// ---- the test --------------------------------------------------------------------------------------------------

/**
 * Property-based test of the consumer's decoding (fast-check): random bytes, random JSON, tombstones, huge values,
 * and real envelopes broken field by field or byte by byte, written straight to the change-event topics with random
 * keys and headers. After each run a valid event is sent behind them on every partition they went to. Every bad
 * message must be dead-lettered once (with its origin), the valid events behind them applied (no stall), and the
 * consumer process must stay up (no crash).
 */
describe('fuzzing the consumer with malformed messages (fast-check)', () => {
  let stack: TestStack;
  let consumer: AppProcess;
  let producer: Producer;
  const port = () => Number(stack.env['CONSUMER_PORT']);
  /** Every bad message sent, by `<topic>/<partition>/<offset>`. */
  const sent = new Map<string, Poison>();

  beforeAll(async () => {
    stack = await TestStack.create({ partitions: PARTITIONS });
    producer = stack.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await producer.connect();
    consumer = new AppProcess('consumer', { ...stack.env, LOG_LEVEL: 'warn', CONSUMER_FETCH_MAX_WAIT_MS: '100' });
    await consumer.ready(port());
  });
  afterAll(async () => {
    await consumer?.stop();
    await producer?.disconnect();
    await stack?.dispose();
  });

  const topicName = (topic: Poison['topic']) => stack.topics[topic];
  const deadLetters = async () => (await scrapeMetrics(port())).sum('writebehind_consumer_dead_letters_total');

  /** Produces the messages to one topic-partition in one request; records each one's offset. */
  async function produce(topic: string, partition: number, messages: Poison[]): Promise<void> {
    const [meta] = await producer.send({
      topic,
      acks: -1,
      messages: messages.map((m) => ({ partition, key: m.key, value: m.value, headers: m.headers })),
    });
    const base = Number(meta?.baseOffset);
    messages.forEach((m, i) => sent.set(`${topic}/${partition}/${base + i}`, m));
  }

  it(`dead-letters every bad message, applies what follows, never crashes: ${RUNS} runs`, async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(poison, { minLength: 1, maxLength: MAX_POISON }), async (batch) => {
        run += 1;
        const tag = `${run}-${randomBytes(3).toString('hex')}`;
        const before = await deadLetters();
        const groups = new Map<string, Poison[]>();
        for (const p of batch)
          groups.set(`${p.topic}/${p.partition}`, [...(groups.get(`${p.topic}/${p.partition}`) ?? []), p]);
        for (const messages of groups.values()) {
          const first = messages[0] as Poison;
          await produce(topicName(first.topic), first.partition, messages);
        }
        // Behind the bad messages, on each partition they went to, one valid event.
        const sentinels: { topic: Poison['topic']; partition: number; id: string }[] = [];
        for (const messages of groups.values()) {
          const { topic, partition } = messages[0] as Poison;
          const id = `sentinel-${tag}-${topic}-${partition}`;
          const event =
            topic === 'counters'
              ? { v: 1, id, type: 'counter.incremented', key: id, ts: Date.now(), by: 1 }
              : {
                  v: 1,
                  id,
                  type: 'activity.recorded',
                  key: 'sentinel',
                  ts: Date.now(),
                  verb: 'checked',
                  object: id,
                  occurredAt: new Date().toISOString(),
                  data: null,
                };
          await producer.send({
            topic: topicName(topic),
            acks: -1,
            messages: [{ partition, key: event.key, value: JSON.stringify(event) }],
          });
          sentinels.push({ topic, partition, id });
        }
        const applied = async () => {
          const ids = sentinels.map((s) => s.id);
          const [counters, activities] = await Promise.all([
            stack.query<{ n: number }>('SELECT count(*)::int AS n FROM counters WHERE name = ANY($1)', [ids]),
            stack.query<{ n: number }>('SELECT count(*)::int AS n FROM activities WHERE id = ANY($1)', [ids]),
          ]);
          return (counters[0]?.n ?? 0) + (activities[0]?.n ?? 0) === ids.length;
        };
        await waitFor(applied, {
          timeoutMs: 30_000,
          intervalMs: 50,
          description: `the valid events behind ${batch.length} bad message(s) applied (${batch.map((p) => p.label).join(', ')})`,
        }).catch((error: unknown) => {
          throw new Error(`${(error as Error).message}\n--- consumer ---\n${consumer.text.slice(-4000)}`);
        });
        expect(consumer.running, 'the consumer process is up').toBe(true);
        // Dead letters are sent before the offset moves past them; the metric follows the commit. Each exactly once.
        await waitFor(async () => (await deadLetters()) >= before + batch.length, {
          timeoutMs: 5000,
          intervalMs: 20,
          description: `${batch.length} dead letter(s) counted`,
        });
        expect(await deadLetters()).toBe(before + batch.length);
      }),
      { numRuns: RUNS },
    );
  });

  it('kept every bad message in the dead-letter topics, once, with its origin', async () => {
    const letters = [
      ...(await readTopic(stack.kafka, `${stack.topics.counters}.dlq`)),
      ...(await readTopic(stack.kafka, `${stack.topics.activities}.dlq`)),
    ];
    const origins = letters.map(
      (l) =>
        `${l.headers['dlq-original-topic']}/${l.headers['dlq-original-partition']}/${l.headers['dlq-original-offset']}`,
    );
    expect(new Set(origins).size).toBe(origins.length);
    expect(new Set(origins)).toEqual(new Set(sent.keys()));
    for (const [i, letter] of letters.entries()) {
      const original = sent.get(origins[i] ?? '') as Poison;
      expect(letter.value ?? Buffer.alloc(0)).toEqual(original.value ?? Buffer.alloc(0));
      expect(letter.key ?? '').toBe(original.key === null ? '' : original.key.toString());
      expect(letter.headers['dlq-error-class']).toMatch(/^(invalid-event|data-exception)$/);
      expect(letter.headers['dlq-error-message']?.length).toBeGreaterThan(0);
    }
    const metrics = await scrapeMetrics(port());
    expect(metrics.sum('writebehind_consumer_crashes_total')).toBe(0);
    expect(consumer.running).toBe(true);
    console.log(
      `consumer fuzz: ${sent.size} bad messages in ${RUNS} runs, all dead-lettered: ` +
        JSON.stringify(
          Object.fromEntries(
            [...new Set([...sent.values()].map((p) => p.label.replace(/^\d+ /, '')))].map((label) => [
              label,
              [...sent.values()].filter((p) => p.label.replace(/^\d+ /, '') === label).length,
            ]),
          ),
        ),
    );
  });
});
