import { randomUUID } from 'node:crypto';

/**
 * Keys for the writes of one request that came without one (an outcome-unknown answer hands them out for the retry):
 * a random UUID for the first, `<uuid>.<n>` for the next ones. Unique as the UUID is, at one UUID per request: a
 * UUID per item was a visible part of a batch's profile.
 */
export function requestKeys(): () => string {
  let base: string | undefined;
  let n = 0;
  return () => {
    if (base === undefined) return (base = randomUUID());
    n += 1;
    return `${base}.${n}`;
  };
}
