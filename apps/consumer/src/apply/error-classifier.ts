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
 *
 * Among transient failures, those Postgres reports about the statement itself (`statementFailureCode`: a
 * serialization failure, a deadlock, a protocol violation such as a NUL inside a statement, an error raised by a
 * trigger) may be caused by one record and repeat forever. They are retried CONSUMER_RETRY_MAX_ATTEMPTS times in a
 * row; then the chunk is split like a permanent failure, and a record that still fails alone is dead-lettered as
 * `retries-exhausted`. Outages (Postgres unreachable, starting, shutting down, out of resources), lock waits and
 * schema mismatches (a missing migration) are never bounded.
 */
export type FailureKind = 'transient' | 'permanent';

/** A bounded set: it is a metric label and a dead-letter header. */
export type PermanentErrorClass =
  | 'invalid-event'
  | 'data-exception'
  | 'constraint-violation'
  | 'program-limit'
  | 'unrepresentable-value'
  | 'retries-exhausted';

export const PERMANENT_ERROR_CLASSES: readonly PermanentErrorClass[] = [
  'invalid-event',
  'data-exception',
  'constraint-violation',
  'program-limit',
  'unrepresentable-value',
  'retries-exhausted',
];

/**
 * A failure Postgres reported about the statement itself that kept coming back CONSUMER_RETRY_MAX_ATTEMPTS times in
 * a row (RetryService gives up with this): the chunk is split to find the record that causes it.
 */
export class RetriesExhaustedError extends Error {
  override readonly name = 'RetriesExhaustedError';

  constructor(
    override readonly cause: Error,
    /** The SQLSTATE that repeated. */
    readonly code: string,
    readonly attempts: number,
  ) {
    super(cause.message);
  }
}

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

/**
 * SQLSTATE classes of failures that do not come from the records of a statement: the connection or the server
 * (08, 53, 57, 58), waits on other sessions (55: lock not available, object in use), the schema or privileges (42,
 * 3D, 3F, 28: a missing migration, a wrong database), internal errors (XX), unsupported features (0A), transaction
 * state (25). 08P01, a protocol violation, is the exception: a NUL inside a statement causes it.
 */
const OUTSIDE_THE_RECORDS = new Set(['08', '53', '57', '58', '55', '42', '3D', '3F', '28', 'XX', '0A', '25']);

/**
 * The SQLSTATE when Postgres answered with an error about the statement that a record may cause (see above), or
 * undefined: such failures are retried a bounded number of times. Permanent ones (22, 23, 54) are split at once.
 */
export function statementFailureCode(error: unknown): string | undefined {
  if (!isPostgresError(error)) return undefined;
  const code = error.code;
  if (PERMANENT_SQLSTATE_CLASSES[code.slice(0, 2)] !== undefined) return undefined;
  if (code !== '08P01' && OUTSIDE_THE_RECORDS.has(code.slice(0, 2))) return undefined;
  return code;
}

export function classifyError(error: unknown): Classification {
  if (error instanceof InvalidEventError) return { kind: 'permanent', errorClass: 'invalid-event' };
  if (error instanceof RetriesExhaustedError)
    return { kind: 'permanent', errorClass: 'retries-exhausted', code: error.code };
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
