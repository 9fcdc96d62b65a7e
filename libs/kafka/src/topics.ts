import type { AppConfig } from '@app/config';
import type { ITopicConfig } from 'kafkajs';

/** Dead letters of `topic` go to `<topic>.dlq` (docs/architecture.md section 5). */
export function deadLetterTopic(topic: string): string {
  return `${topic}.dlq`;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Retention and segment time of the change-event topics. Kafka deletes whole segments, and a segment goes only once
 * its newest event is older than retention.ms; a segment takes events for up to segment.ms. So an event can stay
 * readable for retention.ms + segment.ms, and segment.ms is set here rather than left to the broker's default
 * (7 days): the consumer refuses to start unless its dedupe ledger keeps ids at least that long (plus the API's
 * idempotency window), see apps/consumer/src/apply/ledger-retention.service.ts.
 */
export const CHANGE_EVENT_TOPIC_CONFIG = { retentionMs: 7 * DAY_MS, segmentMs: DAY_MS } as const;

/** The config entries of a change-event topic (`minInsync`: min.insync.replicas). */
export function changeEventTopicConfig(minInsync: number): { name: string; value: string }[] {
  return [
    { name: 'min.insync.replicas', value: String(minInsync) },
    { name: 'retention.ms', value: String(CHANGE_EVENT_TOPIC_CONFIG.retentionMs) },
    { name: 'segment.ms', value: String(CHANGE_EVENT_TOPIC_CONFIG.segmentMs) },
  ];
}

/** The topics the system needs: the two change-event topics and their dead-letter topics. */
export function topicSpecs(config: AppConfig): ITopicConfig[] {
  const { partitions, replicationFactor } = config.kafka;
  // With replicas, acks=all must mean "on at least two brokers", or a single broker's loss can lose an ack.
  const minInsync = Math.min(2, replicationFactor);
  const main = [config.kafka.topics.counters, config.kafka.topics.activities];
  return [
    ...main.map((topic) => ({
      topic,
      numPartitions: partitions,
      replicationFactor,
      configEntries: changeEventTopicConfig(minInsync),
    })),
    ...main.map((topic) => ({
      topic: deadLetterTopic(topic),
      numPartitions: Math.min(partitions, 3),
      replicationFactor,
      configEntries: [
        { name: 'min.insync.replicas', value: String(minInsync) },
        { name: 'retention.ms', value: String(30 * DAY_MS) },
        { name: 'segment.ms', value: String(DAY_MS) },
      ],
    })),
  ];
}
