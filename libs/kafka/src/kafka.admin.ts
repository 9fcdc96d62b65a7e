import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { Admin, ITopicConfig } from 'kafkajs';
import { PinoLogger } from 'nestjs-pino';
import { KafkaClient } from './kafka.client.js';

export interface EnsureTopicsResult {
  created: string[];
  existing: string[];
  /** Topics that exist with fewer partitions than asked for: reported, never changed automatically. */
  fewerPartitions: { topic: string; has: number; wanted: number }[];
}

/** Kafka admin calls: connectivity, topic creation. Connects on first use and again after a failure. */
@Injectable()
export class KafkaAdmin implements OnApplicationShutdown {
  private readonly admin: Admin;
  private connecting: Promise<void> | undefined;

  constructor(
    client: KafkaClient,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext('KafkaAdmin');
    this.admin = client.kafka.admin({ retry: { retries: 2 } });
  }

  private async connected(): Promise<Admin> {
    this.connecting ??= this.admin.connect().catch((error: unknown) => {
      this.connecting = undefined;
      throw error;
    });
    await this.connecting;
    return this.admin;
  }

  /** Resolves when a broker answers a metadata request. */
  async ping(): Promise<{ brokers: number; controller: number | null }> {
    const cluster = await (await this.connected()).describeCluster();
    return { brokers: cluster.brokers.length, controller: cluster.controller };
  }

  async ensureTopics(specs: ITopicConfig[]): Promise<EnsureTopicsResult> {
    const admin = await this.connected();
    const existingNames = new Set(await admin.listTopics());
    const missing = specs.filter((s) => !existingNames.has(s.topic));
    if (missing.length > 0) await admin.createTopics({ topics: missing, waitForLeaders: true });
    const present = specs.filter((s) => existingNames.has(s.topic));
    const fewerPartitions: EnsureTopicsResult['fewerPartitions'] = [];
    if (present.length > 0) {
      const metadata = await admin.fetchTopicMetadata({ topics: present.map((s) => s.topic) });
      for (const topic of metadata.topics) {
        const wanted = specs.find((s) => s.topic === topic.name)?.numPartitions ?? 0;
        if (topic.partitions.length < wanted) {
          fewerPartitions.push({ topic: topic.name, has: topic.partitions.length, wanted });
          this.logger.warn({ topic: topic.name, has: topic.partitions.length, wanted }, 'topic has fewer partitions');
        }
      }
    }
    return { created: missing.map((s) => s.topic), existing: present.map((s) => s.topic), fewerPartitions };
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.connecting) await this.admin.disconnect();
  }
}
