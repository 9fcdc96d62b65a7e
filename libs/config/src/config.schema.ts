import { z } from 'zod';

/** An integer variable; the message says what is expected, never what was given. */
const int = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, `an integer from ${min} to ${max}`)
    .transform(Number)
    .refine((n) => n >= min && n <= max, `an integer from ${min} to ${max}`);
const port = int(0, 65535);
const millis = int(1, 24 * 60 * 60 * 1000);
const hostPort = /^[A-Za-z0-9.-]+:\d{1,5}$/;
const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `one of ${values.join(', ')}` });
const topicName = z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, 'a Kafka topic name ([A-Za-z0-9._-], at most 249)');

const urlWithScheme = (schemes: string[]) =>
  z
    .url({ error: `a URL (${schemes.join(', ')})` })
    .refine((value) => schemes.some((s) => value.startsWith(`${s}://`)), {
      error: `must start with ${schemes.map((s) => `${s}://`).join(' or ')}`,
    });

/**
 * Every environment variable the apps read, with its default. docs/configuration.md lists the same set;
 * config-docs.spec.ts checks that the two agree.
 */
export const envSchema = z.object({
  NODE_ENV: oneOf(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

  API_HOST: z.string().min(1).default('0.0.0.0'),
  API_PORT: port.default(3000),
  /** `key:client-id` pairs, comma-separated. Empty: no authentication, every caller is client `public`. */
  API_KEYS: z
    .string()
    .default('')
    .transform((value) =>
      value
        .split(',')
        .map((pair) => pair.trim())
        .filter((pair) => pair.length > 0),
    )
    .pipe(
      z.array(
        z
          .string()
          .regex(
            /^[\x21-\x39\x3b-\x7e]{16,200}:[A-Za-z0-9_.-]{1,64}$/,
            'key:client-id pairs; keys of 16 or more printable characters without ":"',
          ),
      ),
    ),
  API_BODY_LIMIT_BYTES: int(1024, 64 * 1024 * 1024).default(1024 * 1024),
  API_MAX_INCREMENT: int(1, Number.MAX_SAFE_INTEGER).default(1_000_000),
  API_BATCH_MAX_ITEMS: int(1, 10_000).default(1000),
  API_MAX_IN_FLIGHT: int(1, 1_000_000).default(2000),
  API_RETRY_AFTER_SECONDS: int(1, 3600).default(1),
  API_RATE_LIMIT: int(1, 10_000_000).default(20_000),
  API_RATE_LIMIT_WINDOW_MS: millis.default(1000),
  API_IDEMPOTENCY_TTL_SECONDS: int(60, 30 * 24 * 60 * 60).default(24 * 60 * 60),
  API_IDEMPOTENCY_LOCK_MS: millis.default(30_000),
  API_WRITE_MODE_COUNTERS: oneOf(['write-behind', 'write-through']).default('write-behind'),
  API_WRITE_MODE_ACTIVITIES: oneOf(['write-behind', 'write-through']).default('write-behind'),
  API_PRODUCE_LINGER_MS: int(0, 1000).default(5),
  API_PRODUCE_MAX_BATCH_EVENTS: int(1, 100_000).default(2000),
  API_PRODUCE_MAX_BATCH_BYTES: int(1024, 64 * 1024 * 1024).default(1024 * 1024),
  API_PRODUCE_MAX_QUEUED_EVENTS: int(1, 10_000_000).default(50_000),
  API_PRODUCE_TIMEOUT_MS: millis.default(3000),
  API_BREAKER_RESET_MS: millis.default(5000),
  API_FEED_CACHE_TTL_MS: millis.default(5000),
  // Observability (issue 5): the API exports the consumer group's lag from the outside (LagMonitor), so the lag
  // metrics keep coming while every consumer process is down. How often it refreshes them; 0 turns it off.
  API_LAG_EXPORT_INTERVAL_MS: int(0, 10 * 60 * 1000).default(10_000),

  CONSUMER_HOST: z.string().min(1).default('0.0.0.0'),
  CONSUMER_PORT: port.default(3001),
  CONSUMER_GROUP_ID: z.string().min(1).default('writebehind-persistence'),
  /** Partitions whose batches one consumer process applies at the same time (kafkajs partitionsConsumedConcurrently). */
  CONSUMER_PARTITIONS_CONCURRENTLY: int(1, 1000).default(3),
  CONSUMER_BATCH_MAX_EVENTS: int(1, 100_000).default(5000),
  CONSUMER_BATCH_MAX_BYTES: int(1024, 64 * 1024 * 1024).default(1024 * 1024),
  CONSUMER_FETCH_MIN_BYTES: int(1, 64 * 1024 * 1024).default(1),
  CONSUMER_FETCH_MAX_WAIT_MS: int(10, 30_000).default(250),
  CONSUMER_SESSION_TIMEOUT_MS: int(6000, 300_000).default(30_000),
  CONSUMER_HEARTBEAT_INTERVAL_MS: int(100, 60_000).default(3000),
  CONSUMER_RETRY_MIN_DELAY_MS: int(10, 60_000).default(200),
  CONSUMER_RETRY_MAX_DELAY_MS: int(100, 60_000).default(5000),
  CONSUMER_STALL_UNREADY_MS: int(0, 600_000).default(5000),
  CONSUMER_LEDGER_RETENTION_MS: int(60_000, 365 * 24 * 60 * 60 * 1000).default(7 * 24 * 60 * 60 * 1000),
  CONSUMER_LEDGER_PRUNE_INTERVAL_MS: int(1000, 24 * 60 * 60 * 1000).default(60 * 60 * 1000),

  KAFKA_BROKERS: z
    .string()
    .default('127.0.0.1:9092')
    .transform((value) => value.split(',').map((b) => b.trim()))
    .pipe(z.array(z.string().regex(hostPort, 'a comma-separated list of host:port')).min(1)),
  KAFKA_CLIENT_ID: z.string().min(1).default('writebehind'),
  KAFKA_TOPIC_COUNTERS: topicName.default('counter-increments.v1'),
  KAFKA_TOPIC_ACTIVITIES: topicName.default('activities.v1'),
  KAFKA_TOPIC_PARTITIONS: int(1, 10_000).default(12),
  KAFKA_REPLICATION_FACTOR: int(1, 10).default(1),
  KAFKA_CONNECTION_TIMEOUT_MS: millis.default(3000),
  KAFKA_REQUEST_TIMEOUT_MS: millis.default(30_000),

  DATABASE_URL: urlWithScheme(['postgres', 'postgresql']).default('postgres://postgres@127.0.0.1:5432/test'),
  DATABASE_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a lower-case SQL identifier')
    .default('public'),
  /** Shown in pg_stat_activity; default `writebehind-<app>`. */
  DATABASE_APPLICATION_NAME: z.string().max(63).optional(),
  DATABASE_POOL_MAX: int(1, 1000).default(10),
  DATABASE_STATEMENT_TIMEOUT_MS: millis.default(30_000),

  REDIS_URL: urlWithScheme(['redis', 'rediss']).default('redis://127.0.0.1:6379'),
  REDIS_KEY_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9:_.-]{0,64}$/, 'letters, digits and :_.- (at most 64)')
    .default('wb:'),
  REDIS_CONNECT_TIMEOUT_MS: millis.default(2000),
  /** Seed nodes of a Redis Cluster, comma-separated `host:port`. Empty: one Redis server at REDIS_URL. */
  REDIS_CLUSTER_NODES: z
    .string()
    .default('')
    .transform((value) =>
      value
        .split(',')
        .map((node) => node.trim())
        .filter((node) => node.length > 0),
    )
    .pipe(z.array(z.string().regex(hostPort, 'a comma-separated list of host:port'))),
  REDIS_VIEW_BASE_TTL_MS: millis.default(300_000),
  REDIS_VIEW_PENDING_TTL_MS: int(60_000, 30 * 24 * 60 * 60 * 1000).default(7 * 24 * 60 * 60 * 1000),
  REDIS_VIEW_PENDING_MAX_AGE_MS: int(1000, 30 * 24 * 60 * 60 * 1000).default(60 * 60 * 1000),
});

export type Env = z.infer<typeof envSchema>;
