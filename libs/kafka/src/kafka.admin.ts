import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import kafkajs, { type Admin, type ITopicConfig } from 'kafkajs';
import { PinoLogger } from 'nestjs-pino';
import { KafkaClient } from './kafka.client.js';
import { createTopicsAndWait } from './topic-creation.js';

// kafkajs is CommonJS: Node's ESM loader does not see this enum among its named exports.
const { ConfigResourceTypes } = kafkajs;

export interface EnsureTopicsResult {
  created: string[];
  existing: string[];
  /** Topics that exist with fewer partitions than asked for: reported, never changed automatically. */
  fewerPartitions: { topic: string; has: number; wanted: number }[];
  /**
   * Settings of existing topics that differ from the layout (a topic created by an older version, or changed by an
   * operator): reported, never changed automatically (an operator may have raised a retention on purpose).
   */
  otherSettings: { topic: string; name: string; has: string; wanted: string }[];
  /**
   * Settings of existing topics that had the broker's default (a topic created by an older version, before the layout
   * set them): set now to the layout's value, the topic's other settings kept as they were.
   */
  settingsAdded: { topic: string; name: string; value: string }[];
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
    await createTopicsAndWait(admin, missing);
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
    const otherSettings: EnsureTopicsResult['otherSettings'] = [];
    const watched = ['retention.ms', 'segment.ms'];
    const actual =
      present.length > 0
        ? await this.topicConfigs(
            present.map((s) => s.topic),
            watched,
          )
        : new Map<string, Map<string, string>>();
    const settingsAdded: EnsureTopicsResult['settingsAdded'] = [];
    for (const spec of present) {
      const overrides = await this.topicOverrides(spec.topic);
      const adding: { name: string; value: string }[] = [];
      for (const entry of spec.configEntries ?? []) {
        const has = actual.get(spec.topic)?.get(entry.name);
        if (!watched.includes(entry.name) || has === undefined || has === entry.value) continue;
        if (overrides.has(entry.name))
          otherSettings.push({ topic: spec.topic, name: entry.name, has, wanted: entry.value });
        else adding.push(entry);
      }
      if (adding.length === 0) continue;
      // alterConfigs replaces every setting of the topic (kafkajs has no incremental call): the topic's own settings
      // go along, so that nothing an operator set is lost.
      await admin.alterConfigs({
        validateOnly: false,
        resources: [
          {
            type: ConfigResourceTypes.TOPIC,
            name: spec.topic,
            configEntries: [...[...overrides].map(([name, value]) => ({ name, value })), ...adding],
          },
        ],
      });
      for (const entry of adding) settingsAdded.push({ topic: spec.topic, ...entry });
    }
    return {
      created: missing.map((s) => s.topic),
      existing: present.map((s) => s.topic),
      fewerPartitions,
      otherSettings,
      settingsAdded,
    };
  }

  /** The settings a topic has of its own (not the broker's defaults). */
  private async topicOverrides(topic: string): Promise<Map<string, string>> {
    const { resources } = await (
      await this.connected()
    ).describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }], includeSynonyms: false });
    return new Map(
      (resources[0]?.configEntries ?? [])
        .filter((e) => !e.isDefault && !e.readOnly)
        .map((e) => [e.configName, e.configValue] as [string, string]),
    );
  }

  /** The effective value (the topic's own, else the broker's default) of each of `names`, per topic. */
  async topicConfigs(topics: string[], names: string[]): Promise<Map<string, Map<string, string>>> {
    const { resources } = await (
      await this.connected()
    ).describeConfigs({
      resources: topics.map((name) => ({ type: ConfigResourceTypes.TOPIC, name, configNames: names })),
      includeSynonyms: false,
    });
    return new Map(
      resources.map((r) => [
        r.resourceName,
        new Map(r.configEntries.map((e) => [e.configName, e.configValue] as [string, string])),
      ]),
    );
  }

  /** How many partitions each of `topics` has (those that do not exist are absent). */
  async partitionCounts(topics: string[]): Promise<Map<string, number>> {
    const { topics: found } = await (await this.connected()).fetchTopicMetadata({ topics });
    return new Map(found.map((t) => [t.name, t.partitions.length]));
  }

  /** Per partition: the earliest offset still in the log and the end offset (the next to be written). */
  async partitionOffsets(topic: string): Promise<{ partition: number; low: number; high: number }[]> {
    const offsets = await (await this.connected()).fetchTopicOffsets(topic);
    return offsets
      .map((o) => ({ partition: o.partition, low: Number(o.low), high: Number(o.high) }))
      .sort((a, b) => a.partition - b.partition);
  }

  /** Per partition: the first offset whose timestamp is at or after `timestamp` (the end offset if none). */
  async offsetsAtTime(topic: string, timestamp: number): Promise<Map<number, number>> {
    const offsets = await (await this.connected()).fetchTopicOffsetsByTimestamp(topic, timestamp);
    return new Map(offsets.map((o) => [o.partition, Number(o.offset)]));
  }

  /** The group's committed offsets on `topic` per partition; undefined where it never committed. */
  async committedOffsets(groupId: string, topic: string): Promise<Map<number, number | undefined>> {
    const [result] = await (await this.connected()).fetchOffsets({ groupId, topics: [topic] });
    return new Map(
      (result?.partitions ?? []).map((p) => [p.partition, Number(p.offset) >= 0 ? Number(p.offset) : undefined]),
    );
  }

  /** The group's state and members (client id and host of each), as the coordinator reports them. */
  async describeGroup(groupId: string): Promise<{ state: string; members: { clientId: string; host: string }[] }> {
    const { groups } = await (await this.connected()).describeGroups([groupId]);
    const group = groups[0];
    return {
      state: group?.state ?? 'Unknown',
      members: (group?.members ?? []).map((m) => ({ clientId: m.clientId, host: m.clientHost })),
    };
  }

  /** Moves an EMPTY group's committed offsets (Kafka refuses while members are in it). */
  async setGroupOffsets(
    groupId: string,
    topic: string,
    partitions: { partition: number; offset: number }[],
  ): Promise<void> {
    await (
      await this.connected()
    ).setOffsets({
      groupId,
      topic,
      partitions: partitions.map((p) => ({ partition: p.partition, offset: String(p.offset) })),
    });
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.connecting) await this.admin.disconnect();
  }
}
