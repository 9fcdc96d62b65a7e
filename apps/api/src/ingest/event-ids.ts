import { randomUUID } from 'node:crypto';

/**
 * The event id of a write: the client's idempotency key scoped by its client id (so two clients' keys never
 * meet), or a fresh UUID when the client sent none. The id is what the dedupe ledger and the activities'
 * primary key see, so a repeat of a key can never be applied twice.
 */
export function eventId(clientId: string, key: string | undefined): string {
  return `${clientId}:${key ?? randomUUID()}`;
}
