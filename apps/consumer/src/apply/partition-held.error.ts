import type { HoldFinding } from './offset-guard.js';

/**
 * The partition must not be applied: the offset stored in Postgres belongs to an older log than Kafka's (the topic
 * was recreated, or the broker's data lost), or a hold is recorded for it. Nothing of the batch was applied; the
 * caller pauses the partition until `wb offsets rebaseline` releases it.
 */
export class PartitionHeldError extends Error {
  override readonly name = 'PartitionHeldError';

  constructor(
    readonly topic: string,
    readonly partition: number,
    /** What was found now; undefined when the hold was already recorded. */
    readonly finding: HoldFinding | undefined,
  ) {
    super(`${topic}/${partition} is held: its stored offset belongs to an older log`);
  }
}
