import type { Env } from './config.schema.js';

/**
 * The validated, typed configuration. A class so that it can be the injection token: inject `AppConfig`
 * anywhere instead of reading the environment.
 */
export abstract class AppConfig {
  abstract readonly env: Env['NODE_ENV'];
  abstract readonly log: { readonly level: Env['LOG_LEVEL'] };
  abstract readonly api: { readonly host: string; readonly port: number };
  abstract readonly consumer: { readonly host: string; readonly port: number; readonly groupId: string };
  abstract readonly kafka: {
    readonly brokers: readonly string[];
    readonly clientId: string;
    readonly topics: { readonly counters: string; readonly activities: string };
    readonly partitions: number;
    readonly replicationFactor: number;
    readonly connectionTimeoutMs: number;
    readonly requestTimeoutMs: number;
  };
  abstract readonly database: {
    readonly url: string;
    readonly schema: string;
    readonly applicationName: string | undefined;
    readonly poolMax: number;
    readonly statementTimeoutMs: number;
  };
  abstract readonly redis: {
    readonly url: string;
    readonly keyPrefix: string;
    readonly connectTimeoutMs: number;
    /** The counter view (DESIGN.md section 7). */
    readonly view: { readonly baseTtlMs: number; readonly pendingTtlMs: number; readonly pendingMaxAgeMs: number };
  };
}

export function toAppConfig(env: Env): AppConfig {
  return {
    env: env.NODE_ENV,
    log: { level: env.LOG_LEVEL },
    api: { host: env.API_HOST, port: env.API_PORT },
    consumer: { host: env.CONSUMER_HOST, port: env.CONSUMER_PORT, groupId: env.CONSUMER_GROUP_ID },
    kafka: {
      brokers: env.KAFKA_BROKERS,
      clientId: env.KAFKA_CLIENT_ID,
      topics: { counters: env.KAFKA_TOPIC_COUNTERS, activities: env.KAFKA_TOPIC_ACTIVITIES },
      partitions: env.KAFKA_TOPIC_PARTITIONS,
      replicationFactor: env.KAFKA_REPLICATION_FACTOR,
      connectionTimeoutMs: env.KAFKA_CONNECTION_TIMEOUT_MS,
      requestTimeoutMs: env.KAFKA_REQUEST_TIMEOUT_MS,
    },
    database: {
      url: env.DATABASE_URL,
      schema: env.DATABASE_SCHEMA,
      applicationName: env.DATABASE_APPLICATION_NAME,
      poolMax: env.DATABASE_POOL_MAX,
      statementTimeoutMs: env.DATABASE_STATEMENT_TIMEOUT_MS,
    },
    redis: {
      url: env.REDIS_URL,
      keyPrefix: env.REDIS_KEY_PREFIX,
      connectTimeoutMs: env.REDIS_CONNECT_TIMEOUT_MS,
      view: {
        baseTtlMs: env.REDIS_VIEW_BASE_TTL_MS,
        pendingTtlMs: env.REDIS_VIEW_PENDING_TTL_MS,
        pendingMaxAgeMs: env.REDIS_VIEW_PENDING_MAX_AGE_MS,
      },
    },
  };
}
