import type { AppConfig } from '@app/config';
import type { ITopicConfig } from 'kafkajs';

/** Dead letters of `topic` go to `<topic>.dlq` (DESIGN.md section 5). */
export function deadLetterTopic(topic: string): string {
  return `${topic}.dlq`;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** The topics the system needs: the two change-event topics and their dead-letter topics. */
export function topicSpecs(config: AppConfig): ITopicConfig[] {
  const { partitions, replicationFactor } = config.kafka;
  // With replicas, acks=all must mean "on at least two brokers", or a single broker's loss can lose an ack.
  const minInsync = String(Math.min(2, replicationFactor));
  const main = [config.kafka.topics.counters, config.kafka.topics.activities];
  return [
    ...main.map((topic) => ({
      topic,
      numPartitions: partitions,
      replicationFactor,
      configEntries: [
        { name: 'min.insync.replicas', value: minInsync },
        { name: 'retention.ms', value: String(7 * DAY_MS) },
      ],
    })),
    ...main.map((topic) => ({
      topic: deadLetterTopic(topic),
      numPartitions: Math.min(partitions, 3),
      replicationFactor,
      configEntries: [
        { name: 'min.insync.replicas', value: minInsync },
        { name: 'retention.ms', value: String(30 * DAY_MS) },
      ],
    })),
  ];
}
