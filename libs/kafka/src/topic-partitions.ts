import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { type PartitionMetadata, Partitioners } from 'kafkajs';
import { PinoLogger } from 'nestjs-pino';
import { KafkaAdmin } from './kafka.admin.js';

/** How often the partition counts are read again (a topic may have been given more partitions). */
const REFRESH_MS = 60_000;

/**
 * Which partition a key goes to, for producers that place records themselves (the API packs the events of one
 * partition into one record). The same function kafkajs applies to a keyed record (its DefaultPartitioner: murmur2, as
 * Kafka's Java client), over partition counts read from the brokers at first use and every minute after. While a
 * topic's count is unknown (Kafka not reached yet) `partitionOf` answers undefined and the caller lets kafkajs place
 * each record by its key.
 */
@Injectable()
export class TopicPartitions implements OnApplicationShutdown {
  private readonly counts = new Map<string, number>();
  private readonly wanted = new Set<string>();
  private readonly partitioner = Partitioners.DefaultPartitioner();
  /** Per partition count, the metadata the partitioner reads (only its length and leaders matter). */
  private readonly metadata = new Map<number, PartitionMetadata[]>();
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;

  constructor(
    private readonly admin: KafkaAdmin,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext('TopicPartitions');
  }

  partitionOf(topic: string, key: string): number | undefined {
    const count = this.counts.get(topic);
    if (count === undefined) {
      this.want(topic);
      return undefined;
    }
    return this.partitioner({ topic, partitionMetadata: this.metadataOf(count), message: { key, value: null } });
  }

  /** Reads the partition counts of `topics` now (for a caller that needs them known before its first lookup). */
  async load(topics: string[]): Promise<void> {
    for (const topic of topics) this.wanted.add(topic);
    // A refresh already running may have started without these topics: one more after it.
    await this.refreshing;
    await this.refresh();
  }

  private want(topic: string): void {
    if (!this.wanted.has(topic)) this.wanted.add(topic);
    void this.refresh();
    this.timer ??= setInterval(() => void this.refresh(), REFRESH_MS).unref();
  }

  private refresh(): Promise<void> {
    this.refreshing ??= this.admin
      .partitionCounts([...this.wanted])
      .then((counts) => {
        for (const [topic, count] of counts) this.counts.set(topic, count);
      })
      .catch((error: unknown) => this.logger.debug({ err: error }, 'partition counts not read'))
      .finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private metadataOf(count: number): PartitionMetadata[] {
    let metadata = this.metadata.get(count);
    if (metadata === undefined) {
      metadata = Array.from({ length: count }, (_, partitionId) => ({
        partitionErrorCode: 0,
        partitionId,
        leader: 0,
        replicas: [0],
        isr: [0],
        offlineReplicas: [],
      }));
      this.metadata.set(count, metadata);
    }
    return metadata;
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
