import type { Kafka } from 'kafkajs';
import { waitFor } from './wait-for.js';

export interface PartitionLag {
  topic: string;
  partition: number;
  /** The end of the partition (the next offset to be written). */
  high: number;
  /** The group's committed offset; -1 when it never committed this partition. */
  committed: number;
  lag: number;
}

/** Per partition of `topics`, how far the group's committed offset is behind the end of the partition. */
export async function consumerLag(kafka: Kafka, groupId: string, topics: string[]): Promise<PartitionLag[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const committed = await admin.fetchOffsets({ groupId, topics });
    const lags: PartitionLag[] = [];
    for (const topic of topics) {
      const ends = await admin.fetchTopicOffsets(topic);
      const byPartition = new Map(
        (committed.find((c) => c.topic === topic)?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]),
      );
      for (const end of ends) {
        const high = Number(end.high);
        const offset = byPartition.get(end.partition) ?? -1;
        // A partition that never had a record has nothing to commit.
        const lag = high === Number(end.low) && offset < 0 ? 0 : high - Math.max(offset, 0);
        lags.push({ topic, partition: end.partition, high, committed: offset, lag });
      }
    }
    return lags;
  } finally {
    await admin.disconnect();
  }
}

/** Waits until the group has committed every partition of `topics` up to its end. */
export async function waitForLagZero(
  kafka: Kafka,
  groupId: string,
  topics: string[],
  timeoutMs = 120_000,
): Promise<PartitionLag[]> {
  return waitFor(
    async () => {
      const lags = await consumerLag(kafka, groupId, topics);
      return lags.every((l) => l.lag === 0) ? lags : undefined;
    },
    { timeoutMs, intervalMs: 250, description: `consumer group ${groupId} caught up on ${topics.join(', ')}` },
  );
}
