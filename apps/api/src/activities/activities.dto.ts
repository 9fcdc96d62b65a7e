import { ACTOR_PATTERN, VERB_PATTERN } from '@app/events';
import { z } from 'zod';
import { idempotencyKey } from '../counters/counters.dto.js';

/** Largest `data` object of one activity, serialized. */
export const MAX_DATA_BYTES = 16 * 1024;
export const FEED_MAX_LIMIT = 100;

const actor = z.string().regex(ACTOR_PATTERN, 'letters, digits and :_.@- only, 1 to 200 characters');

export const activityInput = z.strictObject({
  id: idempotencyKey.optional(),
  actor,
  verb: z.string().regex(VERB_PATTERN, 'letters, digits and :_.- only, 1 to 100 characters'),
  object: z.string().min(1, 'not empty').max(500, 'at most 500 characters'),
  occurredAt: z.iso.datetime({ offset: true, error: 'an ISO 8601 date-time with offset' }).optional(),
  data: z
    .record(z.string(), z.json())
    .refine((d) => Buffer.byteLength(JSON.stringify(d)) <= MAX_DATA_BYTES, `at most ${MAX_DATA_BYTES} bytes as JSON`)
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
