import type { Command } from './command.js';

/** POSIX shell single-quoting: the value can hold anything, including quotes. */
const quote = (value: string) => `'${value.replaceAll("'", `'\\''`)}'`;

/**
 * Prints the resolved connection settings as shell assignments, so that scripts/stack.sh starts and probes
 * exactly what the apps will use, with the defaults defined once, in @app/config.
 */
export const envCommand: Command = {
  name: 'env',
  summary: 'print the resolved Kafka, Postgres, Redis and port settings as shell assignments',
  run: async ({ config, print }) => {
    const values: Record<string, string> = {
      KAFKA_BROKERS: config.kafka.brokers.join(','),
      DATABASE_URL: config.database.url,
      DATABASE_SCHEMA: config.database.schema,
      REDIS_URL: config.redis.url,
      API_HOST: config.api.host,
      API_PORT: String(config.api.port),
      CONSUMER_HOST: config.consumer.host,
      CONSUMER_PORT: String(config.consumer.port),
    };
    for (const [name, value] of Object.entries(values)) print(`${name}=${quote(value)}`);
  },
};
