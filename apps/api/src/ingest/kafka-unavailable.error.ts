/**
 * Kafka did not acknowledge a publish in time, or refused it, or the circuit is open. The write was not
 * acknowledged to the client: the caller falls back to write-through. (A timed-out send may still land in
 * Kafka later; the consumer's ledger then sees the event id already applied by write-through.)
 */
export class KafkaUnavailableError extends Error {
  override readonly name = 'KafkaUnavailableError';
}

/** Too many events already wait for Kafka in this process. */
export class PublishQueueFullError extends Error {
  override readonly name = 'PublishQueueFullError';
}
