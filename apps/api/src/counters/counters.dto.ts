import { COUNTER_NAME_PATTERN } from '@app/events';
import { z } from 'zod';

/** Idempotency keys and item ids: printable ASCII without spaces, at most 200 characters. */
export const idempotencyKey = z
  .string()
  .regex(/^[\x21-\x7e]{1,200}$/, '1 to 200 printable ASCII characters, no spaces');

export const counterName = z.string().regex(COUNTER_NAME_PATTERN, 'letters, digits and :_.- only, 1 to 200 characters');

export const counterParams = z.strictObject({ name: counterName });

export function incrementBody(maxIncrement: number) {
  const by = z
    .number({ error: 'an integer' })
    .int('an integer')
    .refine((n) => n !== 0, 'not zero')
    .refine((n) => Math.abs(n) <= maxIncrement, `at most ${maxIncrement} in absolute value`);
  return {
    /** The body is optional: no body (or `{}`) increments by 1. */
    single: z.strictObject({ by: by.default(1) }).default({ by: 1 }),
    batch: (maxItems: number) =>
      z.strictObject({
        increments: z
          .array(z.strictObject({ name: counterName, by: by.default(1), id: idempotencyKey.optional() }))
          .min(1, 'at least one increment')
          .max(maxItems, `at most ${maxItems} increments`)
          .superRefine((items, ctx) => {
            const seen = new Set<string>();
            items.forEach((item, index) => {
              if (item.id === undefined) return;
              if (seen.has(item.id))
                ctx.addIssue({ code: 'custom', path: [index, 'id'], message: 'repeated in this batch' });
              seen.add(item.id);
            });
          }),
      }),
  };
}

export type CounterIncrementInput = { name: string; by: number; id?: string | undefined };
