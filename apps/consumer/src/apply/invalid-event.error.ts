/** A Kafka message that is not a valid change event (bad JSON, unknown version, fails the schema). Permanent. */
export class InvalidEventError extends Error {
  override readonly name = 'InvalidEventError';
}
