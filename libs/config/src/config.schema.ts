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

  CONSUMER_HOST: z.string().min(1).default('0.0.0.0'),
  CONSUMER_PORT: port.default(3001),
  CONSUMER_GROUP_ID: z.string().min(1).default('writebehind-persistence'),

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
  REDIS_VIEW_BASE_TTL_MS: millis.default(300_000),
  REDIS_VIEW_PENDING_TTL_MS: int(60_000, 30 * 24 * 60 * 60 * 1000).default(7 * 24 * 60 * 60 * 1000),
  REDIS_VIEW_PENDING_MAX_AGE_MS: int(1000, 30 * 24 * 60 * 60 * 1000).default(60 * 60 * 1000),
});

export type Env = z.infer<typeof envSchema>;
