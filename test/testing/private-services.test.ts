import { createTopicsAndWait } from '@app/kafka';
import { KafkaBroker, PostgresServer, RedisServer, waitFor } from '@app/testing';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The private servers fault tests stop and kill: real processes on their own ports, whose data survives what it
 * would survive in production.
 */
describe('KafkaBroker', () => {
  let broker: KafkaBroker;
  beforeAll(async () => {
    broker = await KafkaBroker.start();
  });
  afterAll(async () => {
    await broker?.dispose();
  });

  const kafka = () =>
    new Kafka({ clientId: 'private-services-test', brokers: [broker.brokers], logLevel: logLevel.NOTHING });

  async function createTopic(topic: string): Promise<void> {
    const admin = kafka().admin();
    await admin.connect();
    try {
      await createTopicsAndWait(admin, [{ topic, numPartitions: 1 }]);
    } finally {
      await admin.disconnect();
    }
  }

  async function produce(topic: string, value: string): Promise<void> {
    const producer = kafka().producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      await producer.send({ topic, acks: -1, messages: [{ value }] });
    } finally {
      await producer.disconnect();
    }
  }

  /** Reads `count` records in `groupId`, from its committed offset or else the beginning, committing each one. */
  async function consume(topic: string, groupId: string, count: number): Promise<string[]> {
    // Short fetches: disconnect() waits for the fetch in flight, 5 s by default.
    const consumer = kafka().consumer({ groupId, maxWaitTimeInMs: 100 });
    const values: string[] = [];
    await consumer.connect();
    try {
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ message, partition }) => {
          values.push(message.value?.toString() ?? '');
          await consumer.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
        },
      });
      await waitFor(() => values.length >= count, { timeoutMs: 60_000, description: `${count} records of ${topic}` });
    } finally {
      await consumer.disconnect();
    }
    return values;
  }

  async function committedOffset(topic: string, groupId: string): Promise<string | undefined> {
    const admin = kafka().admin();
    await admin.connect();
    try {
      const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
      return offsets?.partitions.find((p) => p.partition === 0)?.offset;
    } finally {
      await admin.disconnect();
    }
  }

  it('keeps records and committed offsets across a stop and a restart', async () => {
    const topic = 'stop-restart';
    await createTopic(topic);
    await produce(topic, 'before-stop');
    expect(await consume(topic, 'committer', 1)).toEqual(['before-stop']);

    await broker.stop();
    expect(broker.running).toBe(false);
    await broker.restart();
    expect(broker.running).toBe(true);

    expect(await consume(topic, 'reader-after-stop', 1)).toEqual(['before-stop']);
    expect(await committedOffset(topic, 'committer')).toBe('1');
  });

  it('comes back after a kill with its records and committed offsets', async () => {
    const topic = 'kill-restart';
    await createTopic(topic);
    await produce(topic, 'first');
    expect(await consume(topic, 'resumer', 1)).toEqual(['first']);
    await produce(topic, 'second');

    await broker.kill();
    expect(broker.running).toBe(false);
    const admin = new Kafka({
      clientId: 'private-services-test',
      brokers: [broker.brokers],
      logLevel: logLevel.NOTHING,
      retry: { retries: 0 },
    }).admin();
    await expect(admin.connect()).rejects.toThrow();
    await broker.restart();

    // The group resumes at its committed offset: it gets only what it had not consumed before the kill.
    expect(await consume(topic, 'resumer', 1)).toEqual(['second']);
    expect(await consume(topic, 'reader-after-kill', 2)).toEqual(['first', 'second']);
    expect(await committedOffset(topic, 'resumer')).toBe('2');
  });
});

describe('PostgresServer', () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await PostgresServer.start();
  });
  afterAll(async () => {
    await server?.dispose();
  });

  async function query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    try {
      return (await client.query<R>(sql, params)).rows;
    } finally {
      await client.end();
    }
  }

  it('keeps committed rows across a kill and a restart', async () => {
    await query('CREATE TABLE survivors (id int PRIMARY KEY, name text NOT NULL)');
    await query('INSERT INTO survivors (id, name) VALUES ($1, $2)', [1, 'before-kill']);
    const held = new pg.Client({ connectionString: server.url });
    held.on('error', () => undefined);
    await held.connect();
    const pid = server.pid;
    expect(pid).toBeTypeOf('number');

    await server.kill();
    expect(server.running).toBe(false);
    await expect(held.query('SELECT 1')).rejects.toThrow();
    await held.end().catch(() => undefined);
    await expect(query('SELECT 1')).rejects.toThrow(/ECONNREFUSED/);

    await server.restart();
    expect(server.pid).not.toBe(pid);
    expect(await query('SELECT id, name FROM survivors')).toEqual([{ id: 1, name: 'before-kill' }]);
    expect(server.url).toBe(`postgres://postgres@127.0.0.1:${server.port}/test`);
  });

  it('stops and restarts on the same port with its data', async () => {
    await query('CREATE TABLE stopped (id int PRIMARY KEY)');
    await query('INSERT INTO stopped (id) VALUES (7)');

    await server.stop();
    expect(server.running).toBe(false);
    await expect(query('SELECT 1')).rejects.toThrow(/ECONNREFUSED/);

    await server.restart();
    expect(await query('SELECT id FROM stopped')).toEqual([{ id: 7 }]);
  });
});

describe('RedisServer', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await RedisServer.start();
  });
  afterAll(async () => {
    await server?.dispose();
  });

  /** A client that fails at once instead of reconnecting, so that a dead server shows as an error. */
  function client(): Redis {
    const redis = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    redis.on('error', () => undefined);
    return redis;
  }

  it('answers again after a kill, empty since it keeps nothing', async () => {
    const before = client();
    await before.connect();
    await before.set('survivor', 'before-kill');
    expect(await before.get('survivor')).toBe('before-kill');

    await server.kill();
    expect(server.running).toBe(false);
    await expect(before.get('survivor')).rejects.toThrow();
    before.disconnect();
    await expect(client().connect()).rejects.toThrow();

    await server.restart();
    const after = client();
    await after.connect();
    try {
      expect(await after.ping()).toBe('PONG');
      expect(await after.get('survivor')).toBeNull();
    } finally {
      after.disconnect();
    }
  });
});
