import { Ajv, type AnySchemaObject, type ErrorObject } from 'ajv';
import { ValidationError } from './api.error.js';

/**
 * Request validation: JSON schemas compiled once at boot by ajv. Strict on purpose: no type coercion (`"by":"5"` is
 * a 400, not 5), no silent removal of unknown fields (they are a 400), defaults filled in (`by` is 1). The first
 * error is reported (allErrors costs every request and lets a large body buy many error objects). Patterns run
 * without the `u` flag, so that a length in a pattern counts UTF-16 code units as the event schema (zod) does:
 * nothing accepted here is refused downstream. (minLength and maxLength count code points: not used.)
 */
const ajv = new Ajv({
  coerceTypes: false,
  removeAdditional: false,
  useDefaults: true,
  allErrors: false,
  verbose: true,
  unicodeRegExp: false,
});

/** Largest nesting of an activity's `data` (objects and arrays): deeper is a 400, checked without recursion. */
export const MAX_DATA_DEPTH = 32;

/**
 * Text that Postgres stores exactly as sent: no U+0000 (text and jsonb refuse it) and no unpaired surrogate (it has
 * no UTF-8 form: jsonb refuses its escape, text would store U+FFFD). Accepting either would acknowledge a write that
 * can never be applied as sent.
 */
export const storable = (value: string) => !value.includes('\u0000') && value.isWellFormed();
export const STORABLE = 'no U+0000 or unpaired surrogate characters';

/**
 * An activity's `data`: at most `maxDepth` levels, every string and key storable, at most `maxBytes` as JSON. The
 * depth goes first and without recursion, so that a body nested thousands of levels is refused, not a stack overflow.
 */
function dataProblem(value: unknown, limits: { maxDepth: number; maxBytes: number }): string | undefined {
  const stack: [unknown, number][] = [[value, 1]];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [item, depth] = next;
    if (typeof item === 'string') {
      if (!storable(item)) return STORABLE;
    } else if (item !== null && typeof item === 'object') {
      if (depth > limits.maxDepth) return `at most ${limits.maxDepth} levels of nesting`;
      for (const [key, child] of Object.entries(item)) {
        if (!Array.isArray(item) && !storable(key)) return STORABLE;
        stack.push([child, depth + 1]);
      }
    }
  }
  if (Buffer.byteLength(JSON.stringify(value)) > limits.maxBytes) return `at most ${limits.maxBytes} bytes as JSON`;
  return undefined;
}

ajv.addKeyword({
  keyword: 'activityData',
  schemaType: 'object',
  errors: true,
  validate: function check(limits: { maxDepth: number; maxBytes: number }, value: unknown) {
    const message = dataProblem(value, limits);
    if (message !== undefined) (check as { errors?: Partial<ErrorObject>[] }).errors = [{ message }];
    return message === undefined;
  },
});
ajv.addKeyword({
  keyword: 'storable',
  schemaType: 'boolean',
  errors: false,
  validate: (_on: boolean, value: unknown) => typeof value !== 'string' || storable(value),
});

/** Where an error is, as a dotted path into the request: `body.increments.3.by`. */
function field(where: string, error: ErrorObject): string {
  const path = error.instancePath === '' ? [] : error.instancePath.slice(1).split('/');
  if (error.keyword === 'required') path.push(String((error.params as { missingProperty: string }).missingProperty));
  return [where, ...path].join('.');
}

function message(error: ErrorObject): string {
  switch (error.keyword) {
    case 'required':
      return 'required';
    case 'additionalProperties':
      return `unknown field "${String((error.params as { additionalProperty: string }).additionalProperty)}"`;
    case 'storable':
      return STORABLE;
    case 'activityData':
      return error.message ?? 'not valid';
    default: {
      // Schemas describe what they accept in `description`: one message for every way of missing it.
      const description: unknown = error.parentSchema?.['description'];
      return typeof description === 'string' ? description : (error.message ?? 'not valid');
    }
  }
}

/** A compiled validator of one part of a request (`body`, `query`): returns the value, or throws a 400. */
export function validator<T>(where: string, schema: AnySchemaObject): (value: unknown) => T {
  const validate = ajv.compile(schema);
  return (value) => {
    if (validate(value)) return value as T;
    const error = validate.errors?.[0];
    throw new ValidationError(
      error === undefined
        ? [{ field: where, message: 'not valid' }]
        : [{ field: field(where, error), message: message(error) }],
    );
  };
}

/** A string check of one named part of a request (a route parameter, a header). */
export function checked(where: string, pattern: RegExp, description: string): (value: unknown) => string {
  return (value) => {
    if (typeof value === 'string' && pattern.test(value)) return value;
    throw new ValidationError([{ field: where, message: description }]);
  };
}

/** Rejects a batch whose items repeat an `id`: each item is its own write, with its own key. */
export function uniqueIds(where: string, items: readonly { id?: string | undefined }[]): void {
  const seen = new Set<string>();
  items.forEach((item, index) => {
    if (item.id === undefined) return;
    if (seen.has(item.id))
      throw new ValidationError([{ field: `${where}.${index}.id`, message: 'repeated in this batch' }]);
    seen.add(item.id);
  });
}
