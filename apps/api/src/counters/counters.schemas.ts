import { COUNTER_NAME_PATTERN } from '@app/events';
import fastJson from 'fast-json-stringify';
import { checked, validator } from '../http/validation.js';

/** Idempotency keys and item ids: printable ASCII without spaces, at most 200 characters. */
export const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,200}$/;
const KEY_DESCRIPTION = '1 to 200 printable ASCII characters, no spaces';

export const idempotencyKeyHeader = checked('headers.idempotency-key', IDEMPOTENCY_KEY_PATTERN, KEY_DESCRIPTION);
export const counterNameParam = checked(
  'params.name',
  COUNTER_NAME_PATTERN,
  'letters, digits and :_.- only, 1 to 200 characters',
);

export interface IncrementItem {
  name: string;
  by: number;
  id?: string | undefined;
}

/** The bodies of the counter writes, with `by` bounded by API_MAX_INCREMENT. */
export function counterBodies(maxIncrement: number, batchMaxItems: number) {
  const by = {
    type: 'integer',
    not: { const: 0 },
    minimum: -maxIncrement,
    maximum: maxIncrement,
    default: 1,
    description: `an integer, not zero, at most ${maxIncrement} in absolute value`,
  };
  return {
    /** The body is optional: no body (or `{}`) increments by 1. */
    single: validator<{ by: number }>('body', {
      type: 'object',
      additionalProperties: false,
      properties: { by },
      description: 'an object with an optional integer `by`',
    }),
    batch: validator<{ increments: IncrementItem[] }>('body', {
      type: 'object',
      additionalProperties: false,
      required: ['increments'],
      description: 'an object with `increments`',
      properties: {
        increments: {
          type: 'array',
          minItems: 1,
          maxItems: batchMaxItems,
          description: `1 to ${batchMaxItems} increments`,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['name'],
            description: 'an object with `name`, and optional `by` and `id`',
            properties: {
              name: {
                type: 'string',
                pattern: COUNTER_NAME_PATTERN.source,
                description: 'letters, digits and :_.- only, 1 to 200 characters',
              },
              by,
              id: { type: 'string', pattern: IDEMPOTENCY_KEY_PATTERN.source, description: KEY_DESCRIPTION },
            },
          },
        },
      },
    }),
  };
}

/** The answer to an increment, and what its Idempotency-Key replays. `value` is null when it was not computed. */
export const incrementAnswer = fastJson({
  type: 'object',
  properties: {
    name: { type: 'string' },
    value: { type: 'integer', nullable: true },
    eventId: { type: 'string' },
    mode: { type: 'string' },
  },
  required: ['name', 'value', 'eventId', 'mode'],
});

export interface BatchItemAnswer {
  name: string;
  eventId: string;
  status: 'accepted' | 'duplicate' | 'in-flight' | 'conflict';
  mode?: string | undefined;
}

export const batchAnswer = fastJson({
  type: 'object',
  properties: {
    accepted: { type: 'integer' },
    mode: { type: 'string' },
    results: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          eventId: { type: 'string' },
          status: { type: 'string' },
          mode: { type: 'string' },
        },
        required: ['name', 'eventId', 'status'],
      },
    },
  },
  required: ['accepted', 'mode', 'results'],
});

export const valueAnswer = fastJson({
  type: 'object',
  properties: { name: { type: 'string' }, value: { type: 'integer' } },
  required: ['name', 'value'],
});
