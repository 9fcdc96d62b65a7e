/**
 * Kafka delivered a partition from beyond where Postgres says applying stands: the messages in between were
 * never applied here (Postgres was restored from a backup, or the group's offsets were moved forward from
 * outside). Postgres' offset is the truth, so the consumer seeks back to it; the ledger and the stored offsets
 * keep the re-read exact.
 */
export class RewindRequiredError extends Error {
  override readonly name = 'RewindRequiredError';

  constructor(
    readonly topic: string,
    readonly partition: number,
    /** Where applying stands in Postgres: the next offset to apply. */
    readonly offset: number,
    /** The first offset Kafka delivered. */
    readonly delivered: number,
  ) {
    super(`${topic}/${partition}: delivered from ${delivered}, but Postgres has applied only up to ${offset}`);
  }
}
