import { NETWORK_ERROR_CODES } from '@app/db';
import { InvalidEventError } from './invalid-event.error.js';

/**
 * The one place where the consumer decides what a failure means (STYLE: "the consumer classifies errors as
 * transient or permanent in one place").
 *
 * - transient: the world is briefly wrong (Postgres or Kafka away, a connection reset, a serialization failure or a
 *   deadlock, a statement timeout). The same work is retried with backoff for as long as the consumer runs and is
 *   never dead-lettered: the record is fine, and dead-lettering it would take it out of the totals (G2, G5).
 * - permanent: this record can never be applied (it fails the event schema, or Postgres rejects its data or a
 *   constraint). The batch is split until the record is alone, and that record goes to the dead-letter topic.
 *
 * Anything unrecognised counts as transient: a stalled partition with readiness false and an alert can be fixed
 * and then catches up by itself, whereas dead-lettering every record because of, say, a missing migration would
 * empty the topic into the DLQ.
 */
export type FailureKind = 'transient' | 'permanent';

/** A bounded set: it is a metric label and a dead-letter header. */
export type PermanentErrorClass =
  'invalid-event' | 'data-exception' | 'constraint-violation' | 'program-limit' | 'unrepresentable-value';

export type Classification =
  { kind: 'transient'; reason: string } | { kind: 'permanent'; errorClass: PermanentErrorClass; code?: string };

/** SQLSTATE classes and codes (https://www.postgresql.org/docs/current/errcodes-appendix.html). */
const PERMANENT_SQLSTATE_CLASSES: Record<string, PermanentErrorClass> = {
  // 22xxx data exception: numeric out of range (22003), untranslatable character (22P05), invalid byte sequence...
  '22': 'data-exception',
  // 23xxx integrity constraint violation: not null, foreign key, unique, check.
  '23': 'constraint-violation',
  // 54xxx program limit exceeded: a value too large for a row or a jsonb object.
  '54': 'program-limit',
};

interface PostgresError extends Error {
  code: string;
  severity: string;
}

/** pg's DatabaseError, recognised by shape: pg-promise bundles its own copy of pg, so `instanceof` is unreliable. */
function isPostgresError(error: unknown): error is PostgresError {
  return (
    error instanceof Error &&
    typeof (error as Partial<PostgresError>).severity === 'string' &&
    typeof (error as Partial<PostgresError>).code === 'string' &&
    /^[0-9A-Z]{5}$/.test((error as PostgresError).code)
  );
}

export function classifyError(error: unknown): Classification {
  if (error instanceof InvalidEventError) return { kind: 'permanent', errorClass: 'invalid-event' };
  if (isPostgresError(error)) {
    const permanent = PERMANENT_SQLSTATE_CLASSES[error.code.slice(0, 2)];
    // Everything else is transient: 08 connection exception, 40001 serialization failure, 40P01 deadlock,
    // 53 insufficient resources (53300 too many connections), 57P01-03 admin/crash shutdown and cannot connect
    // now, 57014 statement timeout, 55P03 lock not available, 58 I/O error, and unknown codes (see above).
    return permanent
      ? { kind: 'permanent', errorClass: permanent, code: error.code }
      : { kind: 'transient', reason: `postgres ${error.code}` };
  }
  // int8(): a counter beyond Number.MAX_SAFE_INTEGER cannot be served exactly; that record can never be applied.
  if (error instanceof RangeError) return { kind: 'permanent', errorClass: 'unrepresentable-value' };
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_ERROR_CODES.has(code)) return { kind: 'transient', reason: code };
    // kafkajs errors (request timeouts, connection errors, exhausted retries) and pg's connection messages
    // ("Connection terminated unexpectedly", "timeout exceeded when trying to connect") are transient.
    return { kind: 'transient', reason: error.name };
  }
  return { kind: 'transient', reason: 'unknown' };
}

/**
 * Why a retry happened, as a metric label (a fixed set). `permanent`: a failure retried anyway because nothing may
 * move past the record before it is settled (the dead-letter produce, the offset advance past a dead letter).
 */
export const RETRY_CAUSES = [
  'connection',
  'timeout',
  'serialization',
  'deadlock',
  'unavailable',
  'permanent',
  'other',
] as const;
export type RetryCause = (typeof RETRY_CAUSES)[number];

export function retryCause(error: unknown): RetryCause {
  const classification = classifyError(error);
  if (classification.kind === 'permanent') return 'permanent';
  if (isPostgresError(error)) {
    if (error.code === '40001') return 'serialization';
    if (error.code === '40P01') return 'deadlock';
    if (error.code === '57014' || error.code === '55P03') return 'timeout';
    if (error.code.startsWith('08')) return 'connection';
    // 53xxx insufficient resources (too many connections), 57P0x shutting down or starting, 58xxx I/O.
    if (/^(53|57P|58)/.test(error.code)) return 'unavailable';
    return 'other';
  }
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_ERROR_CODES.has(code))
      return code === 'ETIMEDOUT' ? 'timeout' : 'connection';
    if (/timeout|timed out/i.test(`${error.name} ${error.message}`)) return 'timeout';
    if (/connect|terminated|closed|ECONN|socket/i.test(`${error.name} ${error.message}`)) return 'connection';
  }
  return 'other';
}
