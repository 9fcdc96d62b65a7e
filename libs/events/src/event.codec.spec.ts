import { describe, expect, it } from 'vitest';
import { counterBody, decodeEvent, decodeRecord, encodeEvent, envelopeRecord, eventBody } from './event.codec.js';
import type { ActivityRecorded, CounterIncremented } from './event.schema.js';

const counter: CounterIncremented = {
  v: 1,
  id: 'client-a:7b1c',
  type: 'counter.incremented',
  key: 'page:home',
  ts: 1_790_000_000_000,
  by: 3,
};
const activity: ActivityRecorded = {
  v: 1,
  id: 'act-1',
  type: 'activity.recorded',
  key: 'user@example.com',
  ts: 1_790_000_000_000,
  verb: 'liked',
  object: 'post:42',
  occurredAt: '2026-11-26T06:00:00.000Z',
  data: { source: 'web', tags: ['a', 1, null] },
};

describe('event codec', () => {
  it('encodes a counter event with the compiled encoder exactly as JSON.stringify does', () => {
    expect(encodeEvent(counter)).toBe(JSON.stringify(counter));
    expect(encodeEvent(activity)).toBe(JSON.stringify(activity));
    const quoted = { ...counter, id: 'c:"k\\\u0001"' };
    expect(encodeEvent(quoted)).toBe(JSON.stringify(quoted));
    expect(counterBody(quoted.id, counter.key, counter.ts, counter.by)).toBe(eventBody(quoted));
  });

  it('round-trips an envelope of events, each with its own traceparent, and a v1 record with its header', () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const value = envelopeRecord([
      { body: eventBody(counter), traceparent },
      { body: eventBody(activity) },
      { body: eventBody({ ...counter, id: 'c:2' }) },
    ]);
    expect(JSON.parse(value)).toMatchObject({
      v: 2,
      groups: [{ traceparent, events: [{ id: counter.id }] }, { events: [{ id: activity.id }, { id: 'c:2' }] }],
    });
    expect(decodeRecord(value)).toEqual({
      ok: true,
      events: [
        { event: counter, traceparent },
        { event: activity, traceparent: undefined },
        { event: { ...counter, id: 'c:2' }, traceparent: undefined },
      ],
    });
    expect(decodeRecord(encodeEvent(counter), traceparent)).toEqual({
      ok: true,
      events: [{ event: counter, traceparent }],
    });
  });

  it.each([
    ['no groups', { v: 2, groups: [] }, /groups/],
    ['a group without events', { v: 2, groups: [{ events: [] }] }, /groups\.0\.events/],
    ['a bad event', { v: 2, groups: [{ events: [{ ...counter, v: undefined, by: 0 }] }] }, /groups\.0\.events\.0\.by/],
    ['an event with its own version', { v: 2, groups: [{ events: [counter] }] }, /v/],
    ['an unknown field', { v: 2, groups: [], extra: 1 }, /extra|groups/],
  ])('rejects an envelope with %s, whole', (_label, value, reason) => {
    const result = decodeRecord(JSON.stringify(value));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(reason);
  });

  it('round-trips both event types', () => {
    expect(decodeEvent(encodeEvent(counter))).toEqual({ ok: true, event: counter });
    expect(decodeEvent(encodeEvent(activity))).toEqual({ ok: true, event: activity });
  });

  it.each([
    ['empty', Buffer.alloc(0), /empty/],
    ['null', null, /empty/],
    ['not JSON', '{"v":1,', /not JSON/],
    ['unknown version', JSON.stringify({ ...counter, v: 3 }), /v:/],
    ['unknown type', JSON.stringify({ ...counter, type: 'counter.reset' }), /type/],
    ['zero delta', JSON.stringify({ ...counter, by: 0 }), /by: not zero/],
    ['fractional delta', JSON.stringify({ ...counter, by: 1.5 }), /by: a safe integer/],
    ['unsafe delta', JSON.stringify({ ...counter, by: 2 ** 60 }), /by: a safe integer/],
    ['bad counter name', JSON.stringify({ ...counter, key: 'has space' }), /key/],
    ['unknown field', JSON.stringify({ ...counter, extra: true }), /extra/],
    ['bad timestamp', JSON.stringify({ ...activity, occurredAt: 'yesterday' }), /occurredAt/],
    ['array data', JSON.stringify({ ...activity, data: [1] }), /data/],
    ['U+0000 in the object', JSON.stringify({ ...activity, object: 'post\u0000' }), /object: no U\+0000/],
  ])('rejects %s with a reason', (_label, value, reason) => {
    const result = decodeEvent(value);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(reason);
  });
});
