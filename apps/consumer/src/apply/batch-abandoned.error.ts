/**
 * The batch in flight is given up without committing anything more to Kafka: the consumer is stopping, or the
 * partition was revoked (kafkajs marks the batch stale) or the group is rebalancing. Whatever was committed to
 * Postgres stays, and the Postgres offset makes the next owner skip it.
 */
export class BatchAbandonedError extends Error {
  override readonly name = 'BatchAbandonedError';

  constructor(
    readonly why: 'stopping' | 'stale' | 'rebalancing',
    /** The kafkajs error that revealed a rebalance: rethrown so that kafkajs rejoins the group at once. */
    readonly rebalance?: Error,
  ) {
    super(`batch abandoned: ${why}`);
  }
}
