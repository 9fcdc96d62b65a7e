import { readFileSync } from 'node:fs';
import { migrate, postgresConnection } from '@app/db';
import { changeEventTopicConfig, createTopicsAndWait } from '@app/kafka';
import { Redis } from 'ioredis';
import { Kafka, type KafkaConfig, logLevel } from 'kafkajs';
import pg from 'pg';
import { baseEnv, freePort, uniqueName } from './env.js';

export interface TestStackOptions {
  /** Partitions of the test's topics. Few, so that many test runs do not weigh on the one broker. */
  partitions?: number;
  /** Use this broker (a private `KafkaBroker`'s `brokers`) instead of the shared one. */
  brokers?: string;
  /** Use this Postgres (a private `PostgresServer`'s `url`) instead of the shared one. */
  databaseUrl?: string;
  /** Use this Redis (a private `RedisServer`'s `url`) instead of the shared one. */
  redisUrl?: string;
  /** TLS and SASL of the test's own Kafka clients (a secured private broker's `clientSecurity()`). */
  kafkaSecurity?: Pick<KafkaConfig, 'ssl' | 'sasl'>;
  /** The CA of a TLS Redis (`rediss://` redisUrl), for the test's own client. */
  redisCaFile?: string;
  /** More settings for the apps, added to `env` (KAFKA_SSL*, KAFKA_SASL_*, REDIS_TLS_CA_FILE...). */
  env?: Record<string, string>;
}

/**
 * Everything one test file owns on the shared Kafka, Postgres and Redis: its own topics, Postgres schema
 * (migrated with the real migrations), Redis key prefix, consumer group and ports. Tests therefore run in any
 * order and in parallel. `env` is what to start an app with; `dispose()` removes it all.
 */
export class TestStack {
  readonly id = uniqueName('t');
  readonly kafka: Kafka;
  readonly pg: pg.Pool;
  readonly redis: Redis;
  readonly topics: { counters: string; activities: string };
  readonly schema: string;
  readonly keyPrefix: string;
  readonly groupId: string;
  env: Record<string, string> = {};
  private readonly base: ReturnType<typeof baseEnv>;

  private constructor(private readonly options: TestStackOptions) {
    const shared = baseEnv();
    this.base = {
      KAFKA_BROKERS: options.brokers ?? shared.KAFKA_BROKERS,
      DATABASE_URL: options.databaseUrl ?? shared.DATABASE_URL,
      REDIS_URL: options.redisUrl ?? shared.REDIS_URL,
    };
    this.topics = { counters: `${this.id}.counters`, activities: `${this.id}.activities` };
    this.schema = this.id;
    this.keyPrefix = `${this.id}:`;
    this.groupId = `${this.id}-group`;
    this.kafka = new Kafka({
      clientId: this.id,
      brokers: this.base.KAFKA_BROKERS.split(','),
      logLevel: logLevel.NOTHING,
      ...options.kafkaSecurity,
    });
    // The apps' own reading of DATABASE_URL (sslmode, sslrootcert), so a TLS-only Postgres works here too.
    this.pg = new pg.Pool({ ...postgresConnection(this.base.DATABASE_URL), max: 3 });
    this.pg.on('error', () => undefined);
    this.redis = new Redis(this.base.REDIS_URL, {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      ...(options.redisCaFile ? { tls: { ca: [readFileSync(options.redisCaFile, 'utf8')] } } : {}),
    });
    // A test that stops its private Redis would otherwise get ioredis' "Unhandled error event" on stderr.
    this.redis.on('error', () => undefined);
  }

  static async create(options: TestStackOptions = {}): Promise<TestStack> {
    const stack = new TestStack(options);
    await stack.setUp();
    return stack;
  }

  get allTopics(): string[] {
    const main = [this.topics.counters, this.topics.activities];
    return [...main, ...main.map((t) => `${t}.dlq`)];
  }

  private async setUp(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const main = [this.topics.counters, this.topics.activities];
      // The change-event topics as the project creates them (retention and segment time bound how long an event
      // stays readable, which the consumer checks against its ledger retention).
      await createTopicsAndWait(
        admin,
        this.allTopics.map((topic) => ({
          topic,
          numPartitions: this.options.partitions ?? 3,
          ...(main.includes(topic) ? { configEntries: changeEventTopicConfig(1) } : {}),
        })),
      );
    } finally {
      await admin.disconnect();
    }
    await migrate({ databaseUrl: this.base.DATABASE_URL, schema: this.schema });
    await this.redis.connect();
    const [apiPort, consumerPort] = await Promise.all([freePort(), freePort()]);
    this.env = {
      ...this.base,
      NODE_ENV: 'test',
      DATABASE_SCHEMA: this.schema,
      KAFKA_TOPIC_COUNTERS: this.topics.counters,
      KAFKA_TOPIC_ACTIVITIES: this.topics.activities,
      KAFKA_TOPIC_PARTITIONS: String(this.options.partitions ?? 3),
      KAFKA_CLIENT_ID: this.id,
      CONSUMER_GROUP_ID: this.groupId,
      REDIS_KEY_PREFIX: this.keyPrefix,
      API_HOST: '127.0.0.1',
      API_PORT: String(apiPort),
      CONSUMER_HOST: '127.0.0.1',
      CONSUMER_PORT: String(consumerPort),
      ...this.options.env,
    };
  }

  /** Runs SQL in this test's schema. */
  async query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    const client = await this.pg.connect();
    try {
      await client.query(`SET search_path TO "${this.schema}"`);
      return (await client.query<R>(sql, params)).rows;
    } finally {
      client.release();
    }
  }

  /**
   * Removes the topics, schema and keys. Each part is best effort: a private server a test left stopped
   * (or already disposed) takes its data with it.
   */
  async dispose(): Promise<void> {
    const ignore = () => undefined;
    const admin = this.kafka.admin({ retry: { retries: 1 } });
    await admin
      .connect()
      .then(async () => {
        await admin.deleteTopics({ topics: this.allTopics }).catch(ignore);
        await admin.deleteGroups([this.groupId]).catch(ignore);
      })
      .catch(ignore)
      .finally(() => admin.disconnect().catch(ignore));
    await this.pg.query(`DROP SCHEMA IF EXISTS "${this.schema}" CASCADE`).catch(ignore);
    await this.pg.end().catch(ignore);
    await this.redis
      .keys(`${this.keyPrefix}*`)
      .then((keys) => (keys.length > 0 ? this.redis.del(...keys) : 0))
      .catch(ignore);
    this.redis.disconnect();
  }
}
