/**
 * Kafka did not acknowledge a publish in time, or refused it, or the circuit is open. The write was not
 * acknowledged to the client: the caller falls back to write-through.
 */
export class KafkaUnavailableError extends Error {
  override readonly name = 'KafkaUnavailableError';

  /**
   * Whether the events may still land in Kafka: they were sent, and the send timed out or failed without saying
   * that the broker refused them. The consumer's ledger then applies them once, whatever write-through did; but if
   * write-through fails too, the client must not be told that nothing was stored.
   */
  constructor(
    message: string,
    readonly mayHaveLanded: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Too many events already wait for Kafka in this process. */
export class PublishQueueFullError extends Error {
  override readonly name = 'PublishQueueFullError';
}
