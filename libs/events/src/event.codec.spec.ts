import { describe, expect, it } from 'vitest';
import { decodeEvent, encodeCounterEvent, encodeEvent } from './event.codec.js';
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
  it('encodes a counter event with the compiled encoder exactly as encodeEvent does', () => {
    expect(encodeCounterEvent(counter)).toBe(encodeEvent(counter).toString('utf8'));
    const quoted = { ...counter, id: 'c:"k\\\u0001"' };
    expect(encodeCounterEvent(quoted)).toBe(encodeEvent(quoted).toString('utf8'));
  });

  it('round-trips both event types', () => {
    expect(decodeEvent(encodeEvent(counter))).toEqual({ ok: true, event: counter });
    expect(decodeEvent(encodeEvent(activity))).toEqual({ ok: true, event: activity });
  });

  it.each([
    ['empty', Buffer.alloc(0), /empty/],
    ['null', null, /empty/],
    ['not JSON', '{"v":1,', /not JSON/],
    ['unknown version', JSON.stringify({ ...counter, v: 2 }), /v:/],
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
