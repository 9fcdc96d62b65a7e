import { describe, expect, it } from 'vitest';
import { isPostgresUnavailable } from './postgres-errors.js';

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

describe('isPostgresUnavailable', () => {
  it('recognises a pool that gave no connection in time, and lost or refused connections', () => {
    expect(isPostgresUnavailable(new Error('timeout exceeded when trying to connect'))).toBe(true);
    expect(isPostgresUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isPostgresUnavailable(withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'))).toBe(true);
  });

  it('recognises the SQLSTATEs of a server that cannot serve now', () => {
    for (const code of ['08006', '53300', '57014', '57P01', '57P03']) {
      expect(isPostgresUnavailable(withCode('x', code)), code).toBe(true);
    }
  });

  it('leaves errors of the query itself alone', () => {
    for (const code of ['42P01', '23505', '22003', '40001']) {
      expect(isPostgresUnavailable(withCode('x', code)), code).toBe(false);
    }
    expect(isPostgresUnavailable(new TypeError('x is undefined'))).toBe(false);
    expect(isPostgresUnavailable('timeout exceeded when trying to connect')).toBe(false);
  });
});
