/**
 * A TTL spread uniformly over ±`jitter` (a fraction), so that keys filled together do not expire together and
 * stampede the database at the same moment.
 */
export function jitteredTtl(ttlMs: number, jitter: number, random: () => number = Math.random): number {
  const spread = ttlMs * Math.min(Math.max(jitter, 0), 1);
  return Math.max(1, Math.round(ttlMs - spread + random() * 2 * spread));
}
