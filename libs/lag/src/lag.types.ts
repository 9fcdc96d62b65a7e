export interface PartitionLag {
  groupId: string;
  topic: string;
  partition: number;
  /** The group's committed offset in Kafka; undefined if it never committed on this partition. */
  committedOffset: number | undefined;
  /** The next offset to apply according to Postgres (`consumer_offsets`), the truth about progress. */
  appliedOffset: number | undefined;
  /**
   * Where applying stands: Postgres' offset, else Kafka's committed offset, else the log start; the log start when
   * Postgres' offset is beyond the end (it belongs to an older log of a recreated topic).
   */
  position: number;
  endOffset: number;
  /** Events written but not applied yet. */
  lagMessages: number;
  /** Age of the oldest event not applied yet (0 when caught up). */
  lagSeconds: number;
}
