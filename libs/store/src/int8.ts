/**
 * pg returns bigint columns as strings. Counter values are bounded by the API's per-write bound long before
 * 2^53, so they are served as JSON numbers; a value past that would be silently rounded, so it is an error.
 */
export function int8(value: string | number): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new RangeError(`bigint ${value} is beyond Number.MAX_SAFE_INTEGER`);
  return n;
}
