import { randomUUID } from 'node:crypto';
import { type ChangeEvent, encodeEvent, envelopeRecord, eventBody } from '@app/events';
import { AppProcess, EventLoad, TestStack, readTopic, waitForLagZero } from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Records of format v2 (an envelope of the events of one partition, as the API publishes them): the consumer applies
 * each event once, by its own id, also when the envelope comes again or overlaps single records; an envelope with an
 * invalid event goes to the dead-letter topic whole, and the partition moves on.
 */
describe('envelopes of events', () => {
  let stack: TestStack;
  let load: EventLoad;
  let consumer: AppProcess;
  const name = `env:${randomUUID()}`;
  const actor = `env-actor-${randomUUID()}`;
  const envelope = (events: ChangeEvent[]) => envelopeRecord(events.map((event) => ({ body: eventBody(event) })));

  beforeAll(async () => {
    stack = await TestStack.create();
    load = new EventLoad(stack.kafka, stack.topics);
    await load.connect();
    const [a, b, c, d] = [1, 2, 4, 8].map((by) => load.counterEvent(name, by)) as [
      ChangeEvent,
      ChangeEvent,
      ChangeEvent,
      ChangeEvent,
    ];
    const bad = { ...load.counterEvent(name, 16), by: 0 };
    const activities = [load.activityEvent(actor), load.activityEvent(actor)];
    await load.sendRaw([
      {
        topic: stack.topics.counters,
        messages: [
          { key: name, value: encodeEvent(a), partition: 0 },
          { key: name, value: envelope([b, c]), partition: 0 },
          // Delivered again, and overlapping a single record of the same event: each id counts once.
          { key: name, value: envelope([b, c, a]), partition: 0 },
          { key: name, value: encodeEvent(c), partition: 0 },
          // One event of this envelope can never be applied: the envelope is dead-lettered whole.
          {
            key: name,
            value: envelopeRecord([{ body: eventBody(d) }, { body: JSON.stringify(bad).replace('{"v":1,', '{') }]),
            partition: 0,
          },
        ],
      },
      { topic: stack.topics.activities, messages: [{ key: actor, value: envelope(activities), partition: 0 }] },
    ]);
    consumer = new AppProcess('consumer', { ...stack.env, LOG_LEVEL: 'warn' });
    await consumer.ready(Number(stack.env['CONSUMER_PORT']));
    await waitForLagZero(stack.kafka, stack.groupId, [stack.topics.counters, stack.topics.activities]);
  });
  afterAll(async () => {
    await consumer?.stop();
    await load?.disconnect();
    await stack?.dispose();
  });

  it('applies each event of an envelope once, by its own id', async () => {
    const [row] = await stack.query<{ value: string }>('SELECT value FROM counters WHERE name = $1', [name]);
    expect(Number(row?.value)).toBe(1 + 2 + 4);
    const stored = await stack.query<{ n: number }>('SELECT count(*)::int AS n FROM activities WHERE actor = $1', [
      actor,
    ]);
    expect(stored[0]?.n).toBe(2);
  });

  it('dead-letters an envelope with an invalid event whole, with its reason', async () => {
    const letters = await readTopic(stack.kafka, `${stack.topics.counters}.dlq`);
    expect(letters).toHaveLength(1);
    expect(letters[0]?.headers['dlq-error-class']).toBe('invalid-event');
    expect(letters[0]?.headers['dlq-error-message']).toMatch(/invalid envelope: groups\.0\.events\.1\.by/);
    expect(String(letters[0]?.value)).toMatch(/^\{"v":2,"groups":\[/);
  });
});
