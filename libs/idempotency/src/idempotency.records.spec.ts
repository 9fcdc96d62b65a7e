import { describe, expect, it } from 'vitest';
import { answered, holding, keyState } from './idempotency.records.js';

describe('idempotency records', () => {
  const print = 'gYB9E63NvSlgZzQNJQ-igN';
  const other = 'o7cuqqTteLOVncKiwyN_BP';

  it('reads a held key as in flight for the same request and as a mismatch for another', () => {
    const record = holding(print);
    expect(keyState(record, print)).toEqual({ kind: 'in-flight' });
    expect(keyState(record, other)).toEqual({ kind: 'mismatch' });
  });

  it('gives each holder its own record, so one request never completes or releases another one’s hold', () => {
    expect(holding(print)).not.toBe(holding(print));
  });

  it('replays an answered request byte for byte, bodies with | included', () => {
    const body = '{"name":"a|b","value":3}';
    expect(keyState(answered(print, 202, body), print)).toEqual({ kind: 'replay', status: 202, body });
    expect(keyState(answered(print, 202, body), other)).toEqual({ kind: 'mismatch' });
  });

  it('reads a record of an unknown shape (an older release, or garbage) as a mismatch, never as a replay', () => {
    expect(keyState('{"s":"d","h":"x"}', print)).toEqual({ kind: 'mismatch' });
    expect(keyState('', print)).toEqual({ kind: 'mismatch' });
  });
});
