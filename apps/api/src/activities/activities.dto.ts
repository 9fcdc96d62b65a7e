import { ACTOR_PATTERN, VERB_PATTERN } from '@app/events';
import { z } from 'zod';
import { idempotencyKey } from '../counters/counters.dto.js';

/** Largest `data` object of one activity, serialized. */
export const MAX_DATA_BYTES = 16 * 1024;
export const FEED_MAX_LIMIT = 100;

/**
 * The instants an `occurredAt` may name: stored in UTC, it must keep a four-digit year (the event schema's ISO 8601
 * form; `9999-12-31T23:30:00-01:00` is year 10000 in UTC) and fit Postgres' timestamptz (no year 0).
 */
const EARLIEST_OCCURRED_AT = Date.parse('0001-01-01T00:00:00Z');
const LATEST_OCCURRED_AT = Date.parse('9999-12-31T23:59:59.999Z');

/**
 * Text that Postgres stores exactly as sent: no U+0000 (text and jsonb refuse it) and no unpaired surrogate (it has
 * no UTF-8 form: jsonb refuses its escape, text would store U+FFFD). Accepting either would acknowledge a write that
 * can never be applied as sent.
 */
const storable = (value: string) => !value.includes('\u0000') && value.isWellFormed();
const storableJson = (value: unknown): boolean => {
  if (typeof value === 'string') return storable(value);
  if (Array.isArray(value)) return value.every(storableJson);
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).every(([key, item]) => storable(key) && storableJson(item));
  }
  return true;
};
const STORABLE = 'no U+0000 or unpaired surrogate characters';

const actor = z.string().regex(ACTOR_PATTERN, 'letters, digits and :_.@- only, 1 to 200 characters');

export const activityInput = z.strictObject({
  id: idempotencyKey.optional(),
  actor,
  verb: z.string().regex(VERB_PATTERN, 'letters, digits and :_.- only, 1 to 100 characters'),
  object: z.string().min(1, 'not empty').max(500, 'at most 500 characters').refine(storable, STORABLE),
  occurredAt: z.iso
    .datetime({ offset: true, error: 'an ISO 8601 date-time with offset' })
    .refine((value) => {
      const at = Date.parse(value);
      return at >= EARLIEST_OCCURRED_AT && at <= LATEST_OCCURRED_AT;
    }, 'from 0001-01-01 to 9999-12-31 in UTC')
    .optional(),
  data: z
    .record(z.string(), z.json())
    .refine((d) => Buffer.byteLength(JSON.stringify(d)) <= MAX_DATA_BYTES, `at most ${MAX_DATA_BYTES} bytes as JSON`)
    .refine(storableJson, STORABLE)
    .nullable()
    .optional(),
});

export type ActivityInput = z.infer<typeof activityInput>;

export const activityBatch = (maxItems: number) =>
  z.strictObject({
    activities: z
      .array(activityInput)
      .min(1, 'at least one activity')
      .max(maxItems, `at most ${maxItems} activities`)
      .superRefine((items, ctx) => {
        const seen = new Set<string>();
        items.forEach((item, index) => {
          if (item.id === undefined) return;
          if (seen.has(item.id))
            ctx.addIssue({ code: 'custom', path: [index, 'id'], message: 'repeated in this batch' });
          seen.add(item.id);
        });
      }),
  });

export const actorParams = actor;

/** The feed cursor: the (occurredAt, id) of the last item of the previous page, opaque to clients. */
export const feedQuery = z.strictObject({
  limit: z.coerce
    .number({ error: `an integer from 1 to ${FEED_MAX_LIMIT}` })
    .int(`an integer from 1 to ${FEED_MAX_LIMIT}`)
    .min(1, `an integer from 1 to ${FEED_MAX_LIMIT}`)
    .max(FEED_MAX_LIMIT, `an integer from 1 to ${FEED_MAX_LIMIT}`)
    .default(20),
  before: z
    .string()
    .transform((value, ctx) => {
      try {
        const parsed = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as unknown;
        if (Array.isArray(parsed) && typeof parsed[0] === 'string' && typeof parsed[1] === 'string') {
          const occurredAt = new Date(parsed[0]);
          if (!Number.isNaN(occurredAt.getTime())) return { occurredAt: occurredAt.toISOString(), id: parsed[1] };
        }
      } catch {
        // falls through to the issue below
      }
      ctx.addIssue({ code: 'custom', message: 'a cursor from a previous page (`next`)' });
      return z.NEVER;
    })
    .optional(),
});

export function encodeCursor(occurredAt: string, id: string): string {
  return Buffer.from(JSON.stringify([occurredAt, id]), 'utf8').toString('base64url');
}
