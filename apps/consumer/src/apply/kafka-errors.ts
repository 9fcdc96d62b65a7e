/**
 * The kafkajs errors that mean "this member's view of the group is out of date": the group is rebalancing, the
 * coordinator moved, or the member was dropped. kafkajs' runner rejoins the group when one of these escapes a
 * batch (its own `isRebalancing`, plus UNKNOWN_MEMBER_ID which it also handles by rejoining), so these are the
 * only errors the consumer lets out of `eachBatch`.
 */
const REJOIN_TYPES = new Set([
  'REBALANCE_IN_PROGRESS',
  'NOT_COORDINATOR_FOR_GROUP',
  'ILLEGAL_GENERATION',
  'UNKNOWN_MEMBER_ID',
]);

export function isRebalancing(error: unknown): error is Error & { type: string } {
  const type = (error as { type?: unknown } | null)?.type;
  return error instanceof Error && typeof type === 'string' && REJOIN_TYPES.has(type);
}
