import { z } from 'zod';

/** Version of the event schema below. A consumer rejects (dead-letters) any other version instead of guessing. */
export const EVENT_VERSION = 1;
/**
 * A record that carries several events of one partition: `{"v":2,"groups":[{"traceparent"?,"events":[...]}]}`, each
 * event without its `v`, grouped by the trace of the request that accepted them (docs/architecture.md, section 5).
 */
export const ENVELOPE_VERSION = 2;

export const COUNTER_NAME_PATTERN = /^[A-Za-z0-9:_.-]{1,200}$/;
export const ACTOR_PATTERN = /^[A-Za-z0-9:_.@-]{1,200}$/;
export const VERB_PATTERN = /^[A-Za-z0-9:_.-]{1,100}$/;
/** Event ids are idempotency keys (scoped by client): printable ASCII, no spaces. */
export const EVENT_ID_PATTERN = /^[\x21-\x7e]{1,300}$/;

export const counterName = z.string().regex(COUNTER_NAME_PATTERN, 'a counter name matching ^[A-Za-z0-9:_.-]{1,200}$');
export const eventId = z.string().regex(EVENT_ID_PATTERN, 'an id of 1 to 300 printable ASCII characters');
export const actor = z.string().regex(ACTOR_PATTERN, 'an actor matching ^[A-Za-z0-9:_.@-]{1,200}$');
export const verb = z.string().regex(VERB_PATTERN, 'a verb matching ^[A-Za-z0-9:_.-]{1,100}$');
/**
 * No U+0000: Postgres text cannot hold it, and inside a statement it breaks the protocol message (SQLSTATE 08P01,
 * a connection-class error that a consumer would retry forever) instead of failing as bad data.
 */
export const activityObject = z
  .string()
  .min(1)
  .max(500)
  .refine((value) => !value.includes('\u0000'), 'no U+0000 character');
export const delta = z
  .number()
  .refine(Number.isSafeInteger, 'a safe integer')
  .refine((n) => n !== 0, 'not zero');
/** Epoch milliseconds at which the API accepted the write; lag in seconds and end-to-end latency start here. */
export const acceptedAt = z.number().int().positive();

export const counterIncrementedSchema = z.strictObject({
  v: z.literal(EVENT_VERSION),
  id: eventId,
  type: z.literal('counter.incremented'),
  key: counterName,
  ts: acceptedAt,
  by: delta,
});

export const activityRecordedSchema = z.strictObject({
  v: z.literal(EVENT_VERSION),
  id: eventId,
  type: z.literal('activity.recorded'),
  /** The actor: activities are keyed by actor so one actor's feed stays in one partition, in order. */
  key: actor,
  ts: acceptedAt,
  verb,
  object: activityObject,
  occurredAt: z.iso.datetime({ offset: true }),
  data: z.record(z.string(), z.json()).nullable(),
});

export const changeEventSchema = z.discriminatedUnion('type', [counterIncrementedSchema, activityRecordedSchema]);

export const envelopeSchema = z.strictObject({
  v: z.literal(ENVELOPE_VERSION),
  groups: z
    .array(
      z.strictObject({
        /** W3C traceparent of the request that accepted the group's events (kept as sent: the consumer lists it). */
        traceparent: z.string().max(512).optional(),
        events: z
          .array(
            z.discriminatedUnion('type', [
              counterIncrementedSchema.omit({ v: true }),
              activityRecordedSchema.omit({ v: true }),
            ]),
          )
          .min(1),
      }),
    )
    .min(1),
});

export type CounterIncremented = z.infer<typeof counterIncrementedSchema>;
export type ActivityRecorded = z.infer<typeof activityRecordedSchema>;
export type ChangeEvent = z.infer<typeof changeEventSchema>;
export type ChangeEventType = ChangeEvent['type'];
