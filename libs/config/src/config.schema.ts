import { readFileSync } from 'node:fs';
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

const bool = z.enum(['true', 'false'], { error: 'true or false' }).transform((value) => value === 'true');

/** Whether `path` names a readable file holding at least one PEM certificate (a CA bundle). */
function isPemCertificateFile(path: string): boolean {
  try {
    return readFileSync(path, 'utf8').includes('-----BEGIN CERTIFICATE-----');
  } catch {
    return false;
  }
}
const pemFile = z
  .string()
  .refine(isPemCertificateFile, { error: 'a readable file with PEM certificates (-----BEGIN CERTIFICATE-----)' });

/** The `sslmode` values the apps implement, with libpq's meaning (docs/security.md). */
export const POSTGRES_SSL_MODES = ['disable', 'require', 'verify-ca', 'verify-full'] as const;

/** A query parameter of a URL; null when absent or when the URL does not parse (its own check reports that). */
function urlParam(url: string, name: string): string | null {
  try {
    return new URL(url).searchParams.get(name);
  } catch {
    return null;
  }
}

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
  API_MAX_BODY_BYTES_IN_FLIGHT: int(1024, 1024 * 1024 * 1024).default(32 * 1024 * 1024),
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
  // Security (issue 8): `/metrics` and `/health/*` on their own listener, so that the public port serves the API
  // only (and answers 404 for them). Unset: they stay on API_PORT. The host defaults to API_HOST.
  API_ADMIN_PORT: port.optional(),
  API_ADMIN_HOST: z.string().min(1).optional(),

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
  CONSUMER_RETRY_MAX_ATTEMPTS: int(1, 10_000).default(10),
  CONSUMER_STALL_UNREADY_MS: int(0, 600_000).default(5000),
  // At least retention.ms + segment.ms of the change-event topics (7 d + 1 d as created) + API_IDEMPOTENCY_TTL_SECONDS:
  // the consumer refuses to start otherwise.
  CONSUMER_LEDGER_RETENTION_MS: int(60_000, 365 * 24 * 60 * 60 * 1000).default(10 * 24 * 60 * 60 * 1000),
  CONSUMER_LEDGER_PRUNE_INTERVAL_MS: int(1000, 24 * 60 * 60 * 1000).default(60 * 60 * 1000),
  CONSUMER_VIEW_SWEEP_INTERVAL_MS: int(0, 24 * 60 * 60 * 1000).default(60_000),
  CONSUMER_VIEW_SWEEP_MIN_AGE_MS: int(1000, 24 * 60 * 60 * 1000).default(60_000),
  // Security (issue 8): the consumer's `/metrics` and `/health/*` on their own listener instead of CONSUMER_PORT
  // (which then answers 404 for them). The host defaults to CONSUMER_HOST.
  CONSUMER_ADMIN_PORT: port.optional(),
  CONSUMER_ADMIN_HOST: z.string().min(1).optional(),

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
  // Security (issue 8): TLS to the brokers and SASL authentication (kafkajs `ssl` and `sasl`). TLS verifies the
  // brokers' certificates against KAFKA_SSL_CA_FILE, or Node's trusted CAs when it is unset. The password is a
  // secret: it is never logged (libs/platform scrubs configured secrets from every log line).
  KAFKA_SSL: bool.default(false),
  KAFKA_SSL_CA_FILE: pemFile.optional(),
  KAFKA_SSL_REJECT_UNAUTHORIZED: bool.default(true),
  KAFKA_SASL_MECHANISM: oneOf(['none', 'plain', 'scram-sha-256', 'scram-sha-512']).default('none'),
  KAFKA_SASL_USERNAME: z.string().default(''),
  KAFKA_SASL_PASSWORD: z.string().default(''),

  DATABASE_URL: urlWithScheme(['postgres', 'postgresql'])
    // Security (issue 8): the TLS parameters the apps and the migrations honour (libs/db postgres-connection.ts).
    .refine(
      (value) => {
        const mode = urlParam(value, 'sslmode');
        return mode === null || (POSTGRES_SSL_MODES as readonly string[]).includes(mode);
      },
      { error: `sslmode must be one of ${POSTGRES_SSL_MODES.join(', ')}` },
    )
    .refine(
      (value) => {
        const file = urlParam(value, 'sslrootcert');
        return file === null || isPemCertificateFile(file);
      },
      { error: 'sslrootcert must name a readable file with PEM certificates' },
    )
    .default('postgres://postgres@127.0.0.1:5432/test'),
  DATABASE_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a lower-case SQL identifier')
    .default('public'),
  /** Shown in pg_stat_activity; default `writebehind-<app>`. */
  DATABASE_APPLICATION_NAME: z.string().max(63).optional(),
  DATABASE_POOL_MAX: int(1, 1000).default(10),
  DATABASE_STATEMENT_TIMEOUT_MS: millis.default(30_000),
  // Security (issue 8): the CA that signs the Postgres server's certificate, like `sslrootcert` in DATABASE_URL
  // (this file wins when both are given). Set alone, it turns on TLS with sslmode=verify-full.
  DATABASE_SSL_CA_FILE: pemFile.optional(),

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
  // Security (issue 8): the CA that signs the Redis server's certificate, for a `rediss://` REDIS_URL (default:
  // Node's trusted CAs). The password goes in REDIS_URL (`rediss://:password@host:port`).
  REDIS_TLS_CA_FILE: pemFile.optional(),
});

/**
 * The schema loadConfig applies: envSchema plus the settings that only make sense together, refused rather than
 * silently ignored. They are checked once every variable is valid on its own.
 */
export const checkedEnvSchema = envSchema.superRefine((env, ctx) => {
  const problem = (variable: string, message: string) => ctx.addIssue({ code: 'custom', path: [variable], message });
  // Port 0 (any free port) excepted: two listeners on one fixed port would fail at boot with EADDRINUSE.
  if (env.API_ADMIN_PORT !== undefined && env.API_ADMIN_PORT !== 0 && env.API_ADMIN_PORT === env.API_PORT)
    problem('API_ADMIN_PORT', 'must differ from API_PORT (leave it empty to serve both on API_PORT)');
  if (
    env.CONSUMER_ADMIN_PORT !== undefined &&
    env.CONSUMER_ADMIN_PORT !== 0 &&
    env.CONSUMER_ADMIN_PORT === env.CONSUMER_PORT
  )
    problem('CONSUMER_ADMIN_PORT', 'must differ from CONSUMER_PORT (leave it empty to serve both on CONSUMER_PORT)');
  if (env.API_MAX_BODY_BYTES_IN_FLIGHT < env.API_BODY_LIMIT_BYTES)
    problem(
      'API_MAX_BODY_BYTES_IN_FLIGHT',
      'must be at least API_BODY_LIMIT_BYTES (else the largest body is never taken)',
    );
  if (env.KAFKA_SSL_CA_FILE !== undefined && !env.KAFKA_SSL) problem('KAFKA_SSL_CA_FILE', 'needs KAFKA_SSL=true');
  if (env.KAFKA_SASL_MECHANISM !== 'none') {
    if (env.KAFKA_SASL_USERNAME === '') problem('KAFKA_SASL_USERNAME', `needed by KAFKA_SASL_MECHANISM`);
    if (env.KAFKA_SASL_PASSWORD === '') problem('KAFKA_SASL_PASSWORD', `needed by KAFKA_SASL_MECHANISM`);
  }
  const sslmode = urlParam(env.DATABASE_URL, 'sslmode');
  if (env.DATABASE_SSL_CA_FILE !== undefined && sslmode === 'disable')
    problem('DATABASE_SSL_CA_FILE', 'conflicts with sslmode=disable in DATABASE_URL');
  // libpq refuses verify-ca without a root certificate: against the public CAs it would accept any of their
  // certificates, for any name.
  if (sslmode === 'verify-ca' && env.DATABASE_SSL_CA_FILE === undefined && !urlParam(env.DATABASE_URL, 'sslrootcert'))
    problem('DATABASE_URL', 'sslmode=verify-ca needs sslrootcert or DATABASE_SSL_CA_FILE');
  if (env.REDIS_TLS_CA_FILE !== undefined && !env.REDIS_URL.startsWith('rediss://'))
    problem('REDIS_TLS_CA_FILE', 'needs a rediss:// REDIS_URL');
});

export type Env = z.infer<typeof envSchema>;
