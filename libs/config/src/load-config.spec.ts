import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

  describe('security settings', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wb-config-'));
    const pem = join(dir, 'ca.pem');
    writeFileSync(pem, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const notPem = join(dir, 'not.pem');
    writeFileSync(notPem, 'hello');

    it('are off by default', () => {
      const config = loadConfig({});
      expect(config.kafka.ssl).toBeUndefined();
      expect(config.kafka.sasl).toBeUndefined();
      expect(config.database.sslCaFile).toBeUndefined();
      expect(config.redis.tlsCaFile).toBeUndefined();
      expect(config.api.admin).toBeUndefined();
      expect(config.consumer.admin).toBeUndefined();
      expect(config.secrets).toEqual([]);
    });

    it('reads Kafka TLS and SASL', () => {
      const config = loadConfig({
        KAFKA_SSL: 'true',
        KAFKA_SSL_CA_FILE: pem,
        KAFKA_SASL_MECHANISM: 'scram-sha-512',
        KAFKA_SASL_USERNAME: 'writer',
        KAFKA_SASL_PASSWORD: 'sasl-secret',
      });
      expect(config.kafka.ssl).toEqual({ caFile: pem, rejectUnauthorized: true });
      expect(config.kafka.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'writer', password: 'sasl-secret' });
    });

    it('places the admin listeners, on the app host unless told otherwise', () => {
      const config = loadConfig({ API_HOST: '10.0.0.1', API_ADMIN_PORT: '9100', CONSUMER_ADMIN_PORT: '9101' });
      expect(config.api.admin).toEqual({ host: '10.0.0.1', port: 9100 });
      expect(config.consumer.admin).toEqual({ host: '0.0.0.0', port: 9101 });
      expect(loadConfig({ API_ADMIN_PORT: '9100', API_ADMIN_HOST: '127.0.0.1' }).api.admin?.host).toBe('127.0.0.1');
    });

    it('refuses settings that do not go together, naming the variable', () => {
      const problems = (env: Record<string, string>) => {
        try {
          loadConfig(env);
          return [];
        } catch (error) {
          return (error as ConfigError).problems.map((p) => p.variable);
        }
      };
      expect(problems({ KAFKA_SSL_CA_FILE: pem })).toEqual(['KAFKA_SSL_CA_FILE']);
      expect(problems({ KAFKA_SASL_MECHANISM: 'scram-sha-256' })).toEqual([
        'KAFKA_SASL_USERNAME',
        'KAFKA_SASL_PASSWORD',
      ]);
      expect(problems({ KAFKA_SASL_MECHANISM: 'kerberos' })).toEqual(['KAFKA_SASL_MECHANISM']);
      expect(problems({ KAFKA_SSL: 'yes' })).toEqual(['KAFKA_SSL']);
      expect(problems({ KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: notPem })).toEqual(['KAFKA_SSL_CA_FILE']);
      expect(problems({ KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: join(dir, 'missing.pem') })).toEqual([
        'KAFKA_SSL_CA_FILE',
      ]);
      expect(problems({ REDIS_TLS_CA_FILE: pem })).toEqual(['REDIS_TLS_CA_FILE']);
      expect(problems({ REDIS_URL: 'rediss://:pw@h:6380', REDIS_TLS_CA_FILE: pem })).toEqual([]);
      expect(problems({ DATABASE_URL: 'postgres://h/db?sslmode=prefer' })).toEqual(['DATABASE_URL']);
      expect(problems({ DATABASE_URL: 'postgres://h/db?sslmode=verify-ca' })).toEqual(['DATABASE_URL']);
      expect(problems({ DATABASE_URL: `postgres://h/db?sslmode=verify-full&sslrootcert=${notPem}` })).toEqual([
        'DATABASE_URL',
      ]);
      expect(problems({ DATABASE_URL: 'postgres://h/db?sslmode=disable', DATABASE_SSL_CA_FILE: pem })).toEqual([
        'DATABASE_SSL_CA_FILE',
      ]);
      expect(problems({ DATABASE_URL: `postgres://h/db?sslmode=verify-ca&sslrootcert=${pem}` })).toEqual([]);
      expect(problems({ API_ADMIN_PORT: 'admin' })).toEqual(['API_ADMIN_PORT']);
      expect(problems({ API_ADMIN_PORT: '3000' })).toEqual(['API_ADMIN_PORT']);
      expect(problems({ CONSUMER_PORT: '9000', CONSUMER_ADMIN_PORT: '9000' })).toEqual(['CONSUMER_ADMIN_PORT']);
    });

    it('collects the secrets the logger must scrub, and never echoes them in errors', () => {
      const config = loadConfig({
        DATABASE_URL: 'postgres://app:db%2Fsecret@h/db',
        REDIS_URL: 'rediss://:redis-secret@h:6380',
        KAFKA_SASL_MECHANISM: 'plain',
        KAFKA_SASL_USERNAME: 'u',
        KAFKA_SASL_PASSWORD: 'sasl-secret',
        API_KEYS: 'key-aaaaaaaaaaaaaaaa:alpha,key-bbbbbbbbbbbbbbbb:beta',
      });
      expect([...config.secrets].sort()).toEqual(
        [
          'db%2Fsecret',
          'db/secret',
          'redis-secret',
          'sasl-secret',
          'key-aaaaaaaaaaaaaaaa',
          'key-bbbbbbbbbbbbbbbb',
        ].sort(),
      );
      let message = '';
      try {
        loadConfig({
          DATABASE_URL: 'postgres://app:db-secret@h/db?sslmode=bogus',
          KAFKA_SASL_PASSWORD: 'sasl-secret',
          API_KEYS: 'short-secret',
        });
      } catch (error) {
        message = (error as Error).message;
      }
      expect(loadConfig({ DATABASE_URL: 'postgres://h/db?user=u&password=in-query-secret' }).secrets).toEqual([
        'in-query-secret',
      ]);
      expect(message).toContain('DATABASE_URL');
      expect(message).toContain('API_KEYS');
      for (const secret of ['db-secret', 'sasl-secret', 'short-secret', 'bogus']) expect(message).not.toContain(secret);
    });
  });
});
