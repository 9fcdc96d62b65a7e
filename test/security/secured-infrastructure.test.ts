import { postgresConnection } from '@app/db';
import { AppProcess, SecuredServices, TestStack, freePort, runCli, uniqueName, waitFor } from '@app/testing';
import { readFileSync } from 'node:fs';
import { connect as connectTls } from 'node:tls';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

interface Readiness {
  status: string;
  details?: Record<string, { status: string; message?: string } & Record<string, unknown>>;
}

const readiness = async (port: number): Promise<{ status: number; body: Readiness }> => {
  const response = await fetch(`http://127.0.0.1:${port}/health/ready`);
  return { status: response.status, body: (await response.json()) as Readiness };
};

/** The first reply line of one command sent over a bare TLS connection (no AUTH, unlike any client library). */
const rawRedisReply = (port: number, ca: string, command: string) =>
  new Promise<string>((resolve, reject) => {
    const socket = connectTls({ host: '127.0.0.1', port, ca: readFileSync(ca, 'utf8') }, () =>
      socket.write(`${command}\r\n`),
    );
    let reply = '';
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('utf8');
      if (reply.includes('\r\n')) {
        socket.destroy();
        resolve(reply.split('\r\n')[0] ?? '');
      }
    });
    socket.once('error', reject);
  });

/** Resolves once `app` has logged a line matching `pattern`; returns that line. */
const logLine = (app: AppProcess, pattern: RegExp, description: string) =>
  waitFor(() => app.text.split('\n').find((line) => pattern.test(line)), { timeoutMs: 60_000, description });

/**
 * Issue 8, security: the apps on infrastructure secured as in production. Kafka has one client listener, SASL_SSL
 * with SCRAM-SHA-512; Postgres takes TCP over TLS only (hostssl), with a SCRAM password, its certificate issued for
 * `localhost`; Redis serves TLS only, with `requirepass`. One test CA signs the three. The built API, consumer and
 * CLI connect with the documented variables (KAFKA_SSL*, KAFKA_SASL_*, DATABASE_URL with sslmode=verify-full and
 * sslrootcert, rediss:// with REDIS_TLS_CA_FILE), and each wrong credential or CA fails clearly.
 */
describe('secured infrastructure', () => {
  let services: SecuredServices;
  let stack: TestStack;
  const apps: AppProcess[] = [];
  /** An app on a port of its own (several run side by side), with its port. */
  const start = async (app: 'api' | 'consumer', env: Record<string, string>) => {
    const port = await freePort();
    const process = new AppProcess(app, { ...env, [app === 'api' ? 'API_PORT' : 'CONSUMER_PORT']: String(port) });
    apps.push(process);
    return Object.assign(process, { port });
  };

  beforeAll(async () => {
    services = await SecuredServices.start();
    stack = await TestStack.create(services.stackOptions());
  });
  afterAll(async () => {
    await Promise.all(apps.map((app) => app.stop()));
    await stack?.dispose();
    await services?.dispose();
  });

  it('the servers refuse plaintext, a wrong name and missing credentials', async () => {
    // Postgres: a plaintext TCP connection matches no pg_hba.conf line.
    const plaintext = new pg.Client({ ...postgresConnection(services.postgres.url), connectionTimeoutMillis: 5000 });
    await expect(plaintext.connect()).rejects.toThrow(/no pg_hba\.conf entry .*no encryption/);
    // verify-full checks the host name: the certificate names localhost, not 127.0.0.1. verify-ca does not.
    const wrongName = new pg.Client(postgresConnection(services.databaseUrl({ host: '127.0.0.1' })));
    await expect(wrongName.connect()).rejects.toThrow(/IP: 127\.0\.0\.1 is not in the cert's list/);
    const chainOnly = new pg.Client(
      postgresConnection(services.databaseUrl({ host: '127.0.0.1', sslmode: 'verify-ca' })),
    );
    await chainOnly.connect();
    expect(
      (await chainOnly.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows,
    ).toEqual([{ ssl: true }]);
    await chainOnly.end();

    // Redis: plaintext gets no answer from the TLS port, and TLS without the password is refused.
    const plainRedis = new Redis(services.redis.port, '127.0.0.1', {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      connectTimeout: 2000,
      commandTimeout: 2000,
    });
    plainRedis.on('error', () => undefined);
    await expect(plainRedis.connect().then(() => plainRedis.ping())).rejects.toThrow();
    plainRedis.disconnect();
    expect(await rawRedisReply(services.redis.port, services.certificates.ca, 'PING')).toMatch(/^-NOAUTH/);

    // Kafka: TLS without SASL, and SASL with a wrong password, are refused.
    const attempt = async (sasl: boolean) => {
      const security = services.broker.clientSecurity({ name: services.kafkaUser.name, password: 'not-the-password' });
      const admin = new Kafka({
        clientId: 'unauthenticated',
        brokers: [services.broker.brokers],
        logLevel: logLevel.NOTHING,
        connectionTimeout: 3000,
        requestTimeout: 5000,
        retry: { retries: 0 },
        ssl: security.ssl,
        ...(sasl ? { sasl: security.sasl } : {}),
      }).admin();
      try {
        await admin.connect();
        await admin.listTopics();
        return 'connected';
      } catch (error) {
        return (error as Error).message;
      } finally {
        await admin.disconnect();
      }
    };
    expect(await attempt(true)).toMatch(/SASL SCRAM SHA512 authentication failed/);
    expect(await attempt(false)).not.toBe('connected');
  });

  it('the CLI applies the migrations over TLS (verify-full), and refuses a server its CA did not sign', async () => {
    const schema = uniqueName('migrate');
    const migrated = await runCli({ ...stack.env, DATABASE_SCHEMA: schema }, ['migrate']);
    expect(migrated.code, migrated.output).toBe(0);
    expect(migrated.stdout).toMatch(/migrations: applied .* to schema/);
    const applied = await stack.pg.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".pgmigrations`);
    expect(Number(applied.rows[0]?.n)).toBeGreaterThan(0);
    await stack.pg.query(`DROP SCHEMA "${schema}" CASCADE`);

    const refused = await runCli(
      {
        ...stack.env,
        DATABASE_SCHEMA: uniqueName('migrate'),
        DATABASE_URL: services.databaseUrl({ ca: services.certificates.otherCa }),
      },
      ['migrate'],
    );
    expect(refused.code).toBe(1);
    expect(refused.output).toMatch(/migrate: unable to verify the first certificate/);
  });

  it('the API and the consumer work end to end through them', async () => {
    const api = await start('api', stack.env);
    const consumer = await start('consumer', stack.env);
    await Promise.all([api.ready(api.port), consumer.ready(consumer.port)]);
    const ready = await readiness(consumer.port);
    expect(ready.body.details).toMatchObject({
      postgres: { status: 'up' },
      redis: { status: 'up' },
      kafka: { status: 'up' },
    });
    const base = `http://127.0.0.1:${api.port}`;
    // The API's Kafka producer connects on first use: wait until a write goes write-behind (through Kafka).
    const name = `secure:${uniqueName('c')}`;
    const increment = (key: string) =>
      fetch(`${base}/v1/counters/${name}/increment`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify({ by: 5 }),
      });
    const answers: { status: number; body: { value: number; eventId: string; mode: string } }[] = [];
    for (let i = 0; i < 5; i++) {
      const response = await increment(`k-${i}`);
      answers.push({ status: response.status, body: (await response.json()) as (typeof answers)[number]['body'] });
    }
    expect(answers.map((a) => a.status)).toEqual([202, 202, 202, 202, 202]);
    expect(answers.map((a) => a.body.mode)).toEqual(Array(5).fill('write-behind'));
    expect(answers.at(-1)?.body.value).toBe(25);
    // A replay of the same key (idempotency record in the TLS Redis) gets the first answer and applies nothing.
    const replay = await increment('k-0');
    expect(((await replay.json()) as { eventId: string }).eventId).toBe(answers[0]?.body.eventId);
    // Read-your-writes from the Redis view.
    const read = (await (await fetch(`${base}/v1/counters/${name}`)).json()) as { value: number };
    expect(read.value).toBe(25);
    // The consumer read the events over SASL_SSL and applied them to Postgres over TLS.
    await waitFor(
      async () =>
        (await stack.query<{ value: string }>('SELECT value FROM counters WHERE name = $1', [name]))[0]?.value === '25',
      { timeoutMs: 60_000, description: 'the counter applied in Postgres' },
    );
    // An activity and its feed: the feed cache lives in the TLS Redis as well.
    const activity = await fetch(`${base}/v1/activities`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ actor: name, verb: 'secured', object: 'post:1' }),
    });
    expect(activity.status).toBe(202);
    await waitFor(
      async () => {
        const feed = (await (await fetch(`${base}/v1/actors/${name}/activities`)).json()) as { items?: unknown[] };
        return (feed.items?.length ?? 0) === 1;
      },
      { timeoutMs: 60_000, description: 'the activity in the feed' },
    );
    // Every connection the apps hold to Postgres is encrypted.
    const connections = await stack.query<{ application_name: string; ssl: boolean }>(
      `SELECT a.application_name, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
        WHERE a.application_name IN ('writebehind-api', 'writebehind-consumer')`,
    );
    expect(new Set(connections.map((c) => c.application_name))).toEqual(
      new Set(['writebehind-api', 'writebehind-consumer']),
    );
    expect(connections.every((c) => c.ssl)).toBe(true);
  });

  it('a wrong SASL password: the consumer is not ready, the API writes through, the log names the failure', async () => {
    const wrong = { ...stack.env, KAFKA_SASL_PASSWORD: 'wrong-sasl-password', KAFKA_CLIENT_ID: 'wrong-sasl' };
    const consumer = await start('consumer', { ...wrong, CONSUMER_GROUP_ID: uniqueName('g') });
    const api = await start('api', wrong);
    const line = await logLine(consumer, /SASL SCRAM SHA512 authentication failed/, 'the SASL failure in the log');
    expect(JSON.parse(line)).toMatchObject({ level: 50 });
    const notReady = await waitFor(
      async () => {
        const r = await readiness(consumer.port);
        return r.status === 503 ? r : undefined;
      },
      { timeoutMs: 60_000, description: 'the consumer not ready' },
    );
    expect(notReady.body.details?.['kafka']?.status).toBe('down');
    // The API stays ready (writes fall back to Postgres) and says Kafka is down.
    await api.ready(api.port);
    await waitFor(async () => (await readiness(api.port)).body.details?.['writes']?.['kafka'] === 'down', {
      description: 'the API reporting Kafka down',
    });
    await logLine(api, /SASL SCRAM SHA512 authentication failed/, 'the API logging the SASL failure');
    const write = await fetch(`http://127.0.0.1:${api.port}/v1/counters/sasl-down:${stack.id}/increment`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ by: 1 }),
    });
    expect(write.status).toBe(200);
    expect(((await write.json()) as { mode: string }).mode).toBe('write-through');
    for (const app of [api, consumer]) expect(app.text).not.toContain('wrong-sasl-password');
    await Promise.all([api.stop(), consumer.stop()]);
  });

  it('a Postgres certificate its CA did not sign: not ready, and the log says why', async () => {
    const consumer = await start('consumer', {
      ...stack.env,
      DATABASE_URL: services.databaseUrl({ ca: services.certificates.otherCa }),
      CONSUMER_GROUP_ID: uniqueName('g'),
    });
    const notReady = await waitFor(
      async () => {
        const r = await readiness(consumer.port);
        return r.status === 503 && r.body.details?.['postgres']?.status === 'down' ? r : undefined;
      },
      { timeoutMs: 60_000, description: 'the consumer not ready for Postgres' },
    );
    expect(notReady.body.details?.['postgres']?.message).toMatch(/unable to verify the first certificate/);
    const line = await logLine(
      consumer,
      /"msg":"postgres connection error"/,
      'the Postgres connection failure in the log',
    );
    expect(JSON.parse(line)).toMatchObject({ err: { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' } });
    await consumer.stop();
  });

  it('a wrong Redis password: not ready, and the log says why', async () => {
    const consumer = await start('consumer', {
      ...stack.env,
      REDIS_URL: services.redisUrl('wrong-redis-password'),
      CONSUMER_GROUP_ID: uniqueName('g'),
    });
    const notReady = await waitFor(
      async () => {
        const r = await readiness(consumer.port);
        return r.status === 503 && r.body.details?.['redis']?.status === 'down' ? r : undefined;
      },
      { timeoutMs: 60_000, description: 'the consumer not ready for Redis' },
    );
    expect(notReady.body.details?.['redis']?.status).toBe('down');
    const line = await logLine(consumer, /"msg":"redis connection error"/, 'the Redis failure in the log');
    expect(JSON.parse(line)).toMatchObject({ err: { message: expect.stringMatching(/^WRONGPASS/) as unknown } });
    expect(consumer.text).not.toContain('wrong-redis-password');
    await consumer.stop();
  });

  it('no password ever appears in any app output', () => {
    const output = apps.map((app) => app.text).join('\n');
    expect(output.length).toBeGreaterThan(0);
    for (const secret of services.secrets) expect(output).not.toContain(secret);
  });
});
