import { randomBytes } from 'node:crypto';

/**
 * The Redis records of Idempotency-Keys, as strings the scripts compare whole:
 *
 *   p|<fingerprint>|<owner>           a request holds the key (its lease runs out after API_IDEMPOTENCY_LOCK_MS)
 *   d|<fingerprint>|<status>|<body>   the key's request was answered: status and the JSON body to replay
 *
 * `owner` is random per request, so a request whose lease ran out (and whose key another request then took)
 * cannot complete or release the key over the new holder: both compare the whole record first.
 */
export type KeyState =
  /** The same request was answered: its answer, to send again as it was. */
  | { kind: 'replay'; status: number; body: string }
  /** The same request is still running somewhere (409). */
  | { kind: 'in-flight' }
  /** The key was used for a different request (422). */
  | { kind: 'mismatch' };

/** The Redis key of a client's Idempotency-Key: keys are scoped per client, so clients never meet. */
export function idempotencyKey(clientId: string, key: string): string {
  return `idem:${clientId}:${key}`;
}

/** Owners: 12 random bytes each, drawn from the CSPRNG 4 KiB at a time. */
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

function owner(): string {
  if (poolOffset + 12 > pool.length) {
    randomBytes(pool.length).copy(pool);
    poolOffset = 0;
  }
  return pool.toString('base64url', poolOffset, (poolOffset += 12));
}

/** The record that holds a key for one request. */
export function holding(print: string): string {
  return `p|${print}|${owner()}`;
}

/** The record of an answered request. `body` is the JSON sent, replayed byte for byte. */
export function answered(print: string, status: number, body: string): string {
  return `d|${print}|${status}|${body}`;
}

/** What a key's current record means for a request with fingerprint `print`. */
export function keyState(record: string, print: string): KeyState {
  const fieldsEnd = record.indexOf('|', 2);
  if (fieldsEnd < 0 || record.slice(2, fieldsEnd) !== print) return { kind: 'mismatch' };
  if (record.startsWith('p|')) return { kind: 'in-flight' };
  const statusEnd = record.indexOf('|', fieldsEnd + 1);
  return {
    kind: 'replay',
    status: Number(record.slice(fieldsEnd + 1, statusEnd)),
    body: record.slice(statusEnd + 1),
  };
}
