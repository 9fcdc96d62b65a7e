import { describe, expect, it } from 'vitest';
import { ConfigError } from './config.error.js';
import { loadConfig } from './load-config.js';

describe('loadConfig', () => {
  it('applies the defaults to an empty environment', () => {
    const config = loadConfig({});
    expect(config.api.port).toBe(3000);
    expect(config.consumer.port).toBe(3001);
    expect(config.kafka.brokers).toEqual(['127.0.0.1:9092']);
    expect(config.kafka.topics).toEqual({ counters: 'counter-increments.v1', activities: 'activities.v1' });
    expect(config.kafka.partitions).toBe(12);
    expect(config.database.schema).toBe('public');
  });

  it('parses lists and numbers', () => {
    const config = loadConfig({ KAFKA_BROKERS: 'a:1, b.example:9093', API_PORT: '8080' });
    expect(config.kafka.brokers).toEqual(['a:1', 'b.example:9093']);
    expect(config.api.port).toBe(8080);
  });

  it('treats an empty value as unset', () => {
    expect(loadConfig({ API_PORT: '' }).api.port).toBe(3000);
  });

  it('names every bad variable and never echoes its value', () => {
    const secret = 'postgres-with-a-secret';
    let caught: unknown;
    try {
      loadConfig({ API_PORT: 'eighty', KAFKA_BROKERS: 'no-port', DATABASE_URL: secret });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const error = caught as ConfigError;
    expect(error.problems.map((p) => p.variable).sort()).toEqual(['API_PORT', 'DATABASE_URL', 'KAFKA_BROKERS']);
    expect(error.message).toContain('API_PORT');
    expect(error.message).not.toContain(secret);
  });

  it('rejects out-of-range values', () => {
    expect(() => loadConfig({ CONSUMER_PORT: '70000' })).toThrow(/CONSUMER_PORT/);
    expect(() => loadConfig({ DATABASE_SCHEMA: 'Robert; DROP TABLE' })).toThrow(/DATABASE_SCHEMA/);
    expect(() => loadConfig({ REDIS_URL: 'http://x' })).toThrow(/REDIS_URL/);
  });
});
