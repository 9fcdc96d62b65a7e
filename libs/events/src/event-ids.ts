import { hash } from 'node:crypto';

/**
 * What a write does, hashed (SHA-256, base64url, 22 characters = 128 bits). The parts are joined with U+0000, which
 * no field a client sends may hold, so different parts never hash alike.
 */
function fingerprint(parts: string[]): string {
  return hash('sha256', parts.join('\u0000'), 'base64url').slice(0, 22);
}

/** The fingerprint of an increment: the counter and the delta. */
export function counterFingerprint(name: string, by: number): string {
  return fingerprint(['counter', name, String(by)]);
}

/**
 * The fingerprint of an activity: everything the client sent but its id. `occurredAt` is part of it only when the
 * client gave it (else the API stamps the time of acceptance, which a retry would not repeat).
 */
export function activityFingerprint(activity: {
  actor: string;
  verb: string;
  object: string;
  occurredAt?: string | undefined;
  data?: unknown;
}): string {
  const { actor, verb, object, occurredAt, data } = activity;
  return fingerprint(['activity', actor, verb, object, occurredAt ?? '', JSON.stringify(data ?? null)]);
}

/**
 * The event id of a write: `<client>:<key>#<fingerprint>`. The key is the client's Idempotency-Key (or item `id`),
 * or a fresh one when it sent none; the fingerprint is what the write does. So a repeat of a request (same key, same
 * body) is the same event, applied once by the dedupe ledger even after its Redis record is gone, and a different
 * request under a reused key is a different event, never dropped as a duplicate (docs/architecture.md). The client
 * id scopes the key: clients never meet.
 */
export function eventId(clientId: string, key: string, print: string): string {
  return `${clientId}:${key}#${print}`;
}
