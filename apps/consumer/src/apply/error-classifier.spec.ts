import { describe, expect, it } from 'vitest';
import { RetriesExhaustedError, classifyError, retryCause, statementFailureCode } from './error-classifier.js';
import { InvalidEventError } from './invalid-event.error.js';

/** A pg DatabaseError as pg builds it: an Error with the SQLSTATE in `code` and a `severity`. */
function postgresError(code: string, message = 'postgres said no'): Error & { code: string } {
  return Object.assign(new Error(message), { code, severity: 'ERROR' });
}

function systemError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code });
}

describe('classifyError', () => {
  it.each([
    ['admin shutdown', postgresError('57P01')],
    ['crash shutdown', postgresError('57P02')],
    ['cannot connect now', postgresError('57P03')],
    ['connection failure', postgresError('08006')],
    ['too many connections', postgresError('53300')],
    ['serialization failure', postgresError('40001')],
    ['deadlock', postgresError('40P01')],
    ['statement timeout', postgresError('57014')],
    ['undefined table (a missing migration: wait for it, do not dead-letter the topic)', postgresError('42P01')],
    ['connection refused', systemError('ECONNREFUSED')],
    ['connection reset', systemError('ECONNRESET')],
    ['pg connection terminated', new Error('Connection terminated unexpectedly')],
    ['kafkajs request timeout', Object.assign(new Error('Request timed out'), { name: 'KafkaJSRequestTimeoutError' })],
    ['a non-error value', 'boom'],
  ])('%s is transient', (_label, error) => {
    expect(classifyError(error).kind).toBe('transient');
  });

  it.each([
    ['numeric out of range', postgresError('22003'), 'data-exception'],
    ['untranslatable character (\\u0000 in jsonb)', postgresError('22P05'), 'data-exception'],
    ['invalid byte sequence (NUL in text)', postgresError('22021'), 'data-exception'],
    ['check violation', postgresError('23514'), 'constraint-violation'],
    ['not null violation', postgresError('23502'), 'constraint-violation'],
    ['row too big', postgresError('54000'), 'program-limit'],
  ])('%s is permanent (%s)', (_label, error, errorClass) => {
    expect(classifyError(error)).toEqual({ kind: 'permanent', errorClass, code: error.code });
  });

  it('an invalid event and an unrepresentable counter value are permanent', () => {
    expect(classifyError(new InvalidEventError('not JSON'))).toEqual({
      kind: 'permanent',
      errorClass: 'invalid-event',
    });
    expect(classifyError(new RangeError('bigint 9007199254740993 is beyond Number.MAX_SAFE_INTEGER'))).toEqual({
      kind: 'permanent',
      errorClass: 'unrepresentable-value',
    });
  });

  it('does not mistake a five-letter system error code for a SQLSTATE', () => {
    expect(classifyError(systemError('EPIPE')).kind).toBe('transient');
  });
});

describe('statementFailureCode', () => {
  it.each([
    ['protocol violation (a NUL inside a statement)', '08P01'],
    ['serialization failure', '40001'],
    ['deadlock', '40P01'],
    ['raised by a trigger', 'P0001'],
    ['ON CONFLICT affecting a row twice', '21000'],
  ])('%s may be caused by a record: bounded', (_label, code) => {
    expect(statementFailureCode(postgresError(code))).toBe(code);
  });

  it.each([
    ['connection failure', postgresError('08006')],
    ['admin shutdown', postgresError('57P01')],
    ['statement timeout', postgresError('57014')],
    ['too many connections', postgresError('53300')],
    ['lock not available', postgresError('55P03')],
    ['undefined table (a missing migration)', postgresError('42P01')],
    ['internal error', postgresError('XX000')],
    ['a permanent failure (split at once)', postgresError('23505')],
    ['connection refused', systemError('ECONNREFUSED')],
    ['pg connection terminated', new Error('Connection terminated unexpectedly')],
  ])('%s is not', (_label, error) => {
    expect(statementFailureCode(error)).toBeUndefined();
  });

  it('a failure that repeated too often is permanent, with its SQLSTATE', () => {
    expect(classifyError(new RetriesExhaustedError(postgresError('08P01'), '08P01', 10))).toEqual({
      kind: 'permanent',
      errorClass: 'retries-exhausted',
      code: '08P01',
    });
  });
});

describe('retryCause', () => {
  it.each([
    [postgresError('40001'), 'serialization'],
    [postgresError('40P01'), 'deadlock'],
    [postgresError('57014'), 'timeout'],
    [postgresError('08006'), 'connection'],
    [postgresError('53300'), 'unavailable'],
    [postgresError('57P01'), 'unavailable'],
    [postgresError('42P01'), 'other'],
    [postgresError('23505'), 'permanent'],
    [systemError('ECONNREFUSED'), 'connection'],
    [systemError('ETIMEDOUT'), 'timeout'],
    [new Error('Connection terminated unexpectedly'), 'connection'],
    [Object.assign(new Error('Request timed out'), { name: 'KafkaJSRequestTimeoutError' }), 'timeout'],
    ['boom', 'other'],
  ])('%s: %s', (error, cause) => {
    expect(retryCause(error)).toBe(cause);
  });
});
