import { ACTOR_PATTERN, VERB_PATTERN } from '@app/events';
import { regexes } from 'zod/v4/core';
import { ValidationError } from '../http/api.error.js';
import { IDEMPOTENCY_KEY_PATTERN } from '../counters/counters.schemas.js';
import { MAX_DATA_DEPTH, STORABLE, checked, validator } from '../http/validation.js';

/** Largest `data` object of one activity, serialized. */
export const MAX_DATA_BYTES = 16 * 1024;
export const FEED_MAX_LIMIT = 100;

/**
 * The instants an `occurredAt` may name: an ISO 8601 date-time with offset, as the event schema reads it (the same
 * pattern); stored in UTC, it must keep a four-digit year (`9999-12-31T23:30:00-01:00` is year 10000 in UTC) and fit
 * Postgres' timestamptz (no year 0).
 */
const DATE_TIME = regexes.datetime({ offset: true });
const EARLIEST_OCCURRED_AT = Date.parse('0001-01-01T00:00:00Z');
const LATEST_OCCURRED_AT = Date.parse('9999-12-31T23:59:59.999Z');

export interface ActivityInput {
  id?: string | undefined;
  actor: string;
  verb: string;
  object: string;
  occurredAt?: string | undefined;
  data?: Record<string, unknown> | null | undefined;
}

const ACTOR_DESCRIPTION = 'letters, digits and :_.@- only, 1 to 200 characters';
export const actorParam = checked('params.actor', ACTOR_PATTERN, ACTOR_DESCRIPTION);

const activity = {
  type: 'object',
  additionalProperties: false,
  required: ['actor', 'verb', 'object'],
  description: 'an object with `actor`, `verb` and `object`',
  properties: {
    id: {
      type: 'string',
      pattern: IDEMPOTENCY_KEY_PATTERN.source,
      description: '1 to 200 printable ASCII characters, no spaces',
    },
    actor: { type: 'string', pattern: ACTOR_PATTERN.source, description: ACTOR_DESCRIPTION },
    verb: {
      type: 'string',
      pattern: VERB_PATTERN.source,
      description: 'letters, digits and :_.- only, 1 to 100 characters',
    },
    object: {
      type: 'string',
      // Not minLength/maxLength, which count code points: 500 UTF-16 code units, as the event schema counts.
      pattern: '^[\\s\\S]{1,500}$',
      storable: true,
      description: `1 to 500 characters, ${STORABLE}`,
    },
    occurredAt: {
      type: 'string',
      description: 'an ISO 8601 date-time with offset, from 0001-01-01 to 9999-12-31 in UTC',
    },
    data: {
      type: ['object', 'null'],
      activityData: { maxDepth: MAX_DATA_DEPTH, maxBytes: MAX_DATA_BYTES },
      description: `an object (or null), at most ${MAX_DATA_BYTES} bytes as JSON and ${MAX_DATA_DEPTH} levels deep`,
    },
  },
};

/** `occurredAt` beyond its pattern: a real instant within the years Postgres and the event schema take. */
function checkOccurredAt(where: string, value: string | undefined): void {
  if (value === undefined) return;
  const at = Date.parse(value);
  if (DATE_TIME.test(value) && at >= EARLIEST_OCCURRED_AT && at <= LATEST_OCCURRED_AT) return;
  throw new ValidationError([{ field: where, message: activity.properties.occurredAt.description }]);
}

export function activityBodies(batchMaxItems: number) {
  const single = validator<ActivityInput>('body', activity);
  const batch = validator<{ activities: ActivityInput[] }>('body', {
    type: 'object',
    additionalProperties: false,
    required: ['activities'],
    description: 'an object with `activities`',
    properties: {
      activities: {
        type: 'array',
        minItems: 1,
        maxItems: batchMaxItems,
        description: `1 to ${batchMaxItems} activities`,
        items: activity,
      },
    },
  });
  return {
    single: (body: unknown) => {
      const input = single(body);
      checkOccurredAt('body.occurredAt', input.occurredAt);
      return input;
    },
    batch: (body: unknown) => {
      const input = batch(body);
      input.activities.forEach((a, i) => checkOccurredAt(`body.activities.${i}.occurredAt`, a.occurredAt));
      return input;
    },
  };
}

/** The feed's query: `limit` (1 to FEED_MAX_LIMIT, default 20) and `before`, a cursor from a previous page. */
export function feedQuery(query: Record<string, unknown>): {
  limit: number;
  before: { occurredAt: string; id: string } | undefined;
} {
  for (const name of Object.keys(query)) {
    if (name !== 'limit' && name !== 'before') {
      throw new ValidationError([{ field: 'query', message: `unknown parameter "${name}"` }]);
    }
  }
  const { limit = '20', before } = query;
  const limitError = `an integer from 1 to ${FEED_MAX_LIMIT}`;
  if (typeof limit !== 'string' || !/^\d{1,3}$/.test(limit) || Number(limit) < 1 || Number(limit) > FEED_MAX_LIMIT) {
    throw new ValidationError([{ field: 'query.limit', message: limitError }]);
  }
  return { limit: Number(limit), before: before === undefined ? undefined : decodeCursor(before) };
}

export function encodeCursor(occurredAt: string, id: string): string {
  return Buffer.from(JSON.stringify([occurredAt, id]), 'utf8').toString('base64url');
}

function decodeCursor(value: unknown): { occurredAt: string; id: string } {
  if (typeof value === 'string') {
    try {
      const parsed = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as unknown;
      if (Array.isArray(parsed) && typeof parsed[0] === 'string' && typeof parsed[1] === 'string') {
        const occurredAt = new Date(parsed[0]);
        if (!Number.isNaN(occurredAt.getTime())) return { occurredAt: occurredAt.toISOString(), id: parsed[1] };
      }
    } catch {
      // falls through to the error below
    }
  }
  throw new ValidationError([{ field: 'query.before', message: 'a cursor from a previous page (`next`)' }]);
}
