import type { Env } from './config.schema.js';

export type WriteMode = 'write-behind' | 'write-through';

/** Where an app serves `/metrics` and `/health/*` when they have their own listener (API_ADMIN_*, CONSUMER_ADMIN_*). */
export interface AdminListener {
  readonly host: string;
  readonly port: number;
}

export type KafkaSaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512';

/**
 * The validated, typed configuration. A class so that it can be the injection token: inject `AppConfig`
 * anywhere instead of reading the environment.
 */
export abstract class AppConfig {
  abstract readonly env: Env['NODE_ENV'];
  abstract readonly log: { readonly level: Env['LOG_LEVEL'] };
  abstract readonly api: {
    readonly host: string;
    readonly port: number;
    /** API key to client id; empty when authentication is off. */
    readonly keys: ReadonlyMap<string, string>;
    readonly bodyLimitBytes: number;
    readonly maxIncrement: number;
    readonly batchMaxItems: number;
    readonly maxInFlight: number;
    /** Bytes of request bodies being received or handled at once per process; past it, 503. */
    readonly maxBodyBytesInFlight: number;
    readonly retryAfterSeconds: number;
    readonly rateLimit: { readonly limit: number; readonly windowMs: number };
    readonly idempotency: { readonly ttlSeconds: number; readonly lockMs: number };
    readonly writeMode: { readonly counters: WriteMode; readonly activities: WriteMode };
    readonly produce: {
      readonly lingerMs: number;
      readonly maxBatchEvents: number;
      readonly maxBatchBytes: number;
      readonly maxQueuedEvents: number;
      readonly timeoutMs: number;
      readonly breakerResetMs: number;
    };
    readonly feedCacheTtlMs: number;
    /** The consumer lag exporter: refresh interval, 0 when off. */
    readonly lagExport: { readonly intervalMs: number };
    /** `/metrics` and `/health/*` on their own listener; undefined: on the API's port. */
    readonly admin: AdminListener | undefined;
  };
  abstract readonly consumer: {
    readonly host: string;
    readonly port: number;
    readonly groupId: string;
    readonly partitionsConcurrently: number;
    /** One Postgres transaction applies at most this many events and bytes of a fetched batch. */
    readonly batch: { readonly maxEvents: number; readonly maxBytes: number };
    /** The broker answers a fetch once it has minBytes, or after maxWaitMs with what it has. */
    readonly fetch: { readonly minBytes: number; readonly maxWaitMs: number };
    readonly sessionTimeoutMs: number;
    readonly heartbeatIntervalMs: number;
    /**
     * Backoff of transient failures. An outage is retried for as long as the consumer runs; a failure Postgres reports
     * about the statement itself is retried `maxAttempts` times in a row, then the chunk is split to isolate the record.
     */
    readonly retry: { readonly minDelayMs: number; readonly maxDelayMs: number; readonly maxAttempts: number };
    /** Readiness turns false once a transient failure has been retried for longer than this. */
    readonly stallUnreadyMs: number;
    readonly ledger: { readonly retentionMs: number; readonly pruneIntervalMs: number };
    /**
     * The sweep of the Redis view's pending deltas (applied ones a failed reconcile left, orphans that never reached
     * Kafka): how often (0: never), and how old an entry must be before it is looked at.
     */
    readonly viewSweep: { readonly intervalMs: number; readonly minAgeMs: number };
    /** `/metrics` and `/health/*` on their own listener; undefined: on the consumer's port. */
    readonly admin: AdminListener | undefined;
  };
  abstract readonly kafka: {
    readonly brokers: readonly string[];
    readonly clientId: string;
    readonly topics: { readonly counters: string; readonly activities: string };
    readonly partitions: number;
    readonly replicationFactor: number;
    readonly connectionTimeoutMs: number;
    readonly requestTimeoutMs: number;
    /** TLS to the brokers; undefined: plaintext. No CA file: Node's trusted CAs. */
    readonly ssl: { readonly caFile: string | undefined; readonly rejectUnauthorized: boolean } | undefined;
    /** SASL authentication; undefined: none. */
    readonly sasl:
      { readonly mechanism: KafkaSaslMechanism; readonly username: string; readonly password: string } | undefined;
  };
  abstract readonly database: {
    readonly url: string;
    readonly schema: string;
    readonly applicationName: string | undefined;
    readonly poolMax: number;
    readonly statementTimeoutMs: number;
    /** The CA of the server's certificate (DATABASE_SSL_CA_FILE); DATABASE_URL's `sslmode`/`sslrootcert` also apply. */
    readonly sslCaFile: string | undefined;
  };
  abstract readonly redis: {
    readonly url: string;
    readonly keyPrefix: string;
    readonly connectTimeoutMs: number;
    /**
     * Seed nodes of a Redis Cluster; empty for a single server at `url`. In cluster mode `url` still gives the
     * credentials and TLS (`rediss://`) used on every node; its host is not used.
     */
    readonly clusterNodes: readonly { readonly host: string; readonly port: number }[];
    /** The counter view (docs/architecture.md section 7). */
    readonly view: { readonly baseTtlMs: number; readonly pendingTtlMs: number };
    /** The CA of the server's certificate, for a `rediss://` URL; undefined: Node's trusted CAs. */
    readonly tlsCaFile: string | undefined;
  };
  /**
   * The configured secrets (passwords in DATABASE_URL and REDIS_URL, KAFKA_SASL_PASSWORD, the API keys), as they
   * could appear in text: the logger removes every one of them from every line it writes.
   */
  abstract readonly secrets: readonly string[];
}

/**
 * The password of a connection URL, as written and decoded, and its `password` parameter (node-postgres reads it).
 */
function urlPassword(url: string): string[] {
  try {
    const parsed = new URL(url);
    const inQuery = parsed.searchParams.get('password');
    return [
      ...(parsed.password === '' ? [] : [parsed.password, decodeURIComponent(parsed.password)]),
      ...(inQuery ? [inQuery] : []),
    ];
  } catch {
    return [];
  }
}

function secretsOf(env: Env): string[] {
  const secrets = [
    ...urlPassword(env.DATABASE_URL),
    ...urlPassword(env.REDIS_URL),
    env.KAFKA_SASL_PASSWORD,
    ...env.API_KEYS.map((pair) => pair.slice(0, pair.lastIndexOf(':'))),
  ];
  return [...new Set(secrets.filter((secret) => secret !== ''))];
}

export function toAppConfig(env: Env): AppConfig {
  return {
    env: env.NODE_ENV,
    log: { level: env.LOG_LEVEL },
    api: {
      host: env.API_HOST,
      port: env.API_PORT,
      keys: new Map(
        env.API_KEYS.map((pair) => [pair.slice(0, pair.lastIndexOf(':')), pair.slice(pair.lastIndexOf(':') + 1)]),
      ),
      bodyLimitBytes: env.API_BODY_LIMIT_BYTES,
      maxIncrement: env.API_MAX_INCREMENT,
      batchMaxItems: env.API_BATCH_MAX_ITEMS,
      maxInFlight: env.API_MAX_IN_FLIGHT,
      maxBodyBytesInFlight: env.API_MAX_BODY_BYTES_IN_FLIGHT,
      retryAfterSeconds: env.API_RETRY_AFTER_SECONDS,
      rateLimit: { limit: env.API_RATE_LIMIT, windowMs: env.API_RATE_LIMIT_WINDOW_MS },
      idempotency: { ttlSeconds: env.API_IDEMPOTENCY_TTL_SECONDS, lockMs: env.API_IDEMPOTENCY_LOCK_MS },
      writeMode: { counters: env.API_WRITE_MODE_COUNTERS, activities: env.API_WRITE_MODE_ACTIVITIES },
      produce: {
        lingerMs: env.API_PRODUCE_LINGER_MS,
        maxBatchEvents: env.API_PRODUCE_MAX_BATCH_EVENTS,
        maxBatchBytes: env.API_PRODUCE_MAX_BATCH_BYTES,
        maxQueuedEvents: env.API_PRODUCE_MAX_QUEUED_EVENTS,
        timeoutMs: env.API_PRODUCE_TIMEOUT_MS,
        breakerResetMs: env.API_BREAKER_RESET_MS,
      },
      feedCacheTtlMs: env.API_FEED_CACHE_TTL_MS,
      lagExport: { intervalMs: env.API_LAG_EXPORT_INTERVAL_MS },
      admin:
        env.API_ADMIN_PORT === undefined
          ? undefined
          : { host: env.API_ADMIN_HOST ?? env.API_HOST, port: env.API_ADMIN_PORT },
    },
    consumer: {
      host: env.CONSUMER_HOST,
      port: env.CONSUMER_PORT,
      groupId: env.CONSUMER_GROUP_ID,
      partitionsConcurrently: env.CONSUMER_PARTITIONS_CONCURRENTLY,
      batch: { maxEvents: env.CONSUMER_BATCH_MAX_EVENTS, maxBytes: env.CONSUMER_BATCH_MAX_BYTES },
      fetch: { minBytes: env.CONSUMER_FETCH_MIN_BYTES, maxWaitMs: env.CONSUMER_FETCH_MAX_WAIT_MS },
      sessionTimeoutMs: env.CONSUMER_SESSION_TIMEOUT_MS,
      heartbeatIntervalMs: env.CONSUMER_HEARTBEAT_INTERVAL_MS,
      retry: {
        minDelayMs: env.CONSUMER_RETRY_MIN_DELAY_MS,
        maxDelayMs: env.CONSUMER_RETRY_MAX_DELAY_MS,
        maxAttempts: env.CONSUMER_RETRY_MAX_ATTEMPTS,
      },
      stallUnreadyMs: env.CONSUMER_STALL_UNREADY_MS,
      ledger: { retentionMs: env.CONSUMER_LEDGER_RETENTION_MS, pruneIntervalMs: env.CONSUMER_LEDGER_PRUNE_INTERVAL_MS },
      viewSweep: {
        intervalMs: env.CONSUMER_VIEW_SWEEP_INTERVAL_MS,
        minAgeMs: env.CONSUMER_VIEW_SWEEP_MIN_AGE_MS,
      },
      admin:
        env.CONSUMER_ADMIN_PORT === undefined
          ? undefined
          : { host: env.CONSUMER_ADMIN_HOST ?? env.CONSUMER_HOST, port: env.CONSUMER_ADMIN_PORT },
    },
    kafka: {
      brokers: env.KAFKA_BROKERS,
      clientId: env.KAFKA_CLIENT_ID,
      topics: { counters: env.KAFKA_TOPIC_COUNTERS, activities: env.KAFKA_TOPIC_ACTIVITIES },
      partitions: env.KAFKA_TOPIC_PARTITIONS,
      replicationFactor: env.KAFKA_REPLICATION_FACTOR,
      connectionTimeoutMs: env.KAFKA_CONNECTION_TIMEOUT_MS,
      requestTimeoutMs: env.KAFKA_REQUEST_TIMEOUT_MS,
      ssl: env.KAFKA_SSL
        ? { caFile: env.KAFKA_SSL_CA_FILE, rejectUnauthorized: env.KAFKA_SSL_REJECT_UNAUTHORIZED }
        : undefined,
      sasl:
        env.KAFKA_SASL_MECHANISM === 'none'
          ? undefined
          : {
              mechanism: env.KAFKA_SASL_MECHANISM,
              username: env.KAFKA_SASL_USERNAME,
              password: env.KAFKA_SASL_PASSWORD,
            },
    },
    database: {
      url: env.DATABASE_URL,
      schema: env.DATABASE_SCHEMA,
      applicationName: env.DATABASE_APPLICATION_NAME,
      poolMax: env.DATABASE_POOL_MAX,
      statementTimeoutMs: env.DATABASE_STATEMENT_TIMEOUT_MS,
      sslCaFile: env.DATABASE_SSL_CA_FILE,
    },
    redis: {
      url: env.REDIS_URL,
      keyPrefix: env.REDIS_KEY_PREFIX,
      connectTimeoutMs: env.REDIS_CONNECT_TIMEOUT_MS,
      clusterNodes: env.REDIS_CLUSTER_NODES.map((node) => ({
        host: node.slice(0, node.lastIndexOf(':')),
        port: Number(node.slice(node.lastIndexOf(':') + 1)),
      })),
      view: {
        baseTtlMs: env.REDIS_VIEW_BASE_TTL_MS,
        pendingTtlMs: env.REDIS_VIEW_PENDING_TTL_MS,
      },
      tlsCaFile: env.REDIS_TLS_CA_FILE,
    },
    secrets: secretsOf(env),
  };
}
