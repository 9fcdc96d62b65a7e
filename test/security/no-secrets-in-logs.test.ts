import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { AppProcess, SecuredServices, TestStack, appEntry, freePort, runCli, uniqueName, waitFor } from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const execFileAsync = promisify(execFile);

/** A secret no output would contain by chance. */
const secret = (what: string) => `${what}-${randomBytes(12).toString('base64url')}`;

/** The ways a secret can be written into a line: as is, URL-encoded (in a connection string), JSON-escaped. */
const forms = (value: string) => [value, encodeURIComponent(value), JSON.stringify(value).slice(1, -1)];

/**
 * Issue 8, "no secret ever in a log line": the apps run at debug level with passwords in DATABASE_URL and REDIS_URL,
 * a SASL password and API keys, on the secured private servers; they serve requests carrying X-API-Key and
 * Authorization headers, failing authentication included; Redis, Postgres and Kafka go down and come back; other
 * processes start with wrong passwords, and with configurations they refuse. No secret, wrong or right, appears in
 * anything any of these processes wrote (standard output and error), and the lines that prove each scenario ran are
 * there.
 */
describe('no secret in any log line', () => {
  let services: SecuredServices;
  let stack: TestStack;
  const apiKeys = { alpha: secret('key-alpha'), beta: secret('key-beta') };
  /** Presented by a caller, never configured: must not be logged either. */
  const guessedKey = secret('key-guessed');
  const basicPassword = secret('basic');
  const wrong = { sasl: secret('wrong-sasl'), postgres: secret('wrong-pg'), redis: secret('wrong-redis') };
  const configSecrets = { url: secret('cfg-pg'), redis: secret('cfg-redis'), key: secret('cfg-key') };
  const processes: AppProcess[] = [];
  const outputs: { what: string; text: string }[] = [];

  const allSecrets = () => [
    ...services.secrets,
    ...Object.values(apiKeys),
    guessedKey,
    basicPassword,
    Buffer.from(`user:${basicPassword}`).toString('base64'),
    ...Object.values(wrong),
    ...Object.values(configSecrets),
  ];

  const start = async (app: 'api' | 'consumer', env: Record<string, string>) => {
    const port = await freePort();
    const process = new AppProcess(app, {
      ...env,
      [app === 'api' ? 'API_PORT' : 'CONSUMER_PORT']: String(port),
    });
    processes.push(process);
    return Object.assign(process, { port });
  };

  beforeAll(async () => {
    // SCRAM-SHA-256 here (secured-infrastructure.test.ts uses SHA-512): both mechanisms run end to end.
    services = await SecuredServices.start({ mechanism: 'SCRAM-SHA-256' });
    stack = await TestStack.create({
      ...services.stackOptions(),
      env: {
        ...services.stackOptions().env,
        API_KEYS: `${apiKeys.alpha}:alpha,${apiKeys.beta}:beta`,
        LOG_LEVEL: 'debug',
        // Short timeouts: the outages below are noticed (and logged) quickly.
        API_PRODUCE_TIMEOUT_MS: '1000',
        CONSUMER_RETRY_MAX_DELAY_MS: '500',
      },
    });
  });
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await stack?.dispose();
    await services?.dispose();
  });

  it('runs the apps through requests, failing authentication and outages', async () => {
    const api = await start('api', stack.env);
    const consumer = await start('consumer', stack.env);
    await Promise.all([api.ready(api.port), consumer.ready(consumer.port)]);
    const base = `http://127.0.0.1:${api.port}`;
    const post = (name: string, headers: Record<string, string>) =>
      fetch(`${base}/v1/counters/${name}/increment`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ by: 1 }),
      });

    expect((await post('leak:a', { 'x-api-key': apiKeys.alpha })).status).toBe(202);
    expect((await post('leak:b', { authorization: `Bearer ${apiKeys.beta}` })).status).toBe(202);
    // Failing authentication, with the key in either header, and a non-Bearer scheme.
    expect((await post('leak:c', { 'x-api-key': guessedKey })).status).toBe(401);
    expect((await post('leak:d', { authorization: `Bearer ${guessedKey}` })).status).toBe(401);
    const basic = Buffer.from(`user:${basicPassword}`).toString('base64');
    expect((await post('leak:e', { authorization: `Basic ${basic}` })).status).toBe(401);
    expect((await post('leak:f', { 'x-api-key': apiKeys.alpha, 'content-type': 'text/plain' })).status).toBe(415);
    // Each refused request is logged at warn, with its credentials redacted.
    const refused = await waitFor(
      () => {
        const lines = api.text.split('\n').filter((l) => l.includes('"statusCode":401'));
        return lines.length >= 3 ? lines : undefined;
      },
      { description: 'the 401s logged' },
    );
    for (const line of refused) {
      const headers = (JSON.parse(line) as { req: { headers: Record<string, string> } }).req.headers;
      expect(headers['x-api-key'] ?? headers['authorization']).toBe('[Redacted]');
    }

    // Each outage is awaited in what the app logs after it began, by the server's port.
    const logsSince = (app: AppProcess, mark: number, pattern: RegExp, description: string) =>
      waitFor(() => pattern.test(app.text.slice(mark)), { timeoutMs: 60_000, description });

    // Redis down: the view and idempotency fail, then come back.
    let mark = api.text.length;
    await services.redis.stop();
    await post('leak:g', { 'x-api-key': apiKeys.alpha });
    await logsSince(api, mark, /redis connection error/, 'the API logging Redis down');
    await services.redis.restart();
    // Postgres down: the consumer retries and logs; the API's reads of a missed view fall back to it.
    mark = consumer.text.length;
    await services.postgres.stop();
    await post('leak:h', { 'x-api-key': apiKeys.alpha });
    await fetch(`${base}/v1/counters/leak:never-cached`, { headers: { 'x-api-key': apiKeys.alpha } });
    await logsSince(
      consumer,
      mark,
      new RegExp(`ECONNREFUSED [^"]*:${services.postgres.port}|terminating connection|Connection terminated`),
      'the consumer logging Postgres down',
    );
    await services.postgres.restart();
    // Kafka down: writes fall back to write-through, kafkajs logs connection errors.
    mark = api.text.length;
    await services.broker.stop();
    await post('leak:i', { 'x-api-key': apiKeys.alpha });
    await logsSince(
      api,
      mark,
      new RegExp(`ECONNREFUSED 127\\.0\\.0\\.1:${services.broker.port}`),
      'the API logging Kafka down',
    );
    await services.broker.restart();
    await Promise.all([api.ready(api.port, 120_000), consumer.ready(consumer.port, 120_000)]);
    expect((await post('leak:j', { 'x-api-key': apiKeys.alpha })).status).toBeLessThan(300);
    // Three outages and a broker restart: longer than the default test timeout on busy cores.
  }, 300_000);

  it('runs processes with wrong passwords', async () => {
    const variants: Record<string, Record<string, string>> = {
      sasl: { KAFKA_SASL_PASSWORD: wrong.sasl },
      postgres: { DATABASE_URL: services.databaseUrl({ password: wrong.postgres }) },
      redis: { REDIS_URL: services.redisUrl(wrong.redis) },
    };
    const started = await Promise.all(
      Object.values(variants).map((env) =>
        start('consumer', { ...stack.env, ...env, CONSUMER_GROUP_ID: uniqueName('g') }),
      ),
    );
    const [sasl, postgres, redis] = started;
    await Promise.all([
      waitFor(() => sasl?.text.includes('SASL SCRAM SHA256 authentication failed'), { timeoutMs: 60_000 }),
      waitFor(() => postgres?.text.includes('password authentication failed'), { timeoutMs: 60_000 }),
      waitFor(() => redis?.text.includes('WRONGPASS'), { timeoutMs: 60_000 }),
    ]);
    await Promise.all(started.map((p) => p.stop()));

    const migrate = await runCli(
      { ...stack.env, DATABASE_URL: services.databaseUrl({ password: wrong.postgres }), LOG_LEVEL: 'debug' },
      ['migrate'],
    );
    expect(migrate.code).toBe(1);
    expect(migrate.output).toMatch(/password authentication failed/);
    outputs.push({ what: 'cli migrate with a wrong password', text: migrate.output });
  });

  it('runs processes with configurations they refuse', async () => {
    const refusals: Record<string, string>[] = [
      { DATABASE_URL: `postgres://app:${configSecrets.url}@db.internal/app?sslmode=bogus` },
      { REDIS_URL: `http://:${configSecrets.redis}@cache.internal:6379` },
      { API_KEYS: `${configSecrets.key}` },
      { KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: '', KAFKA_SASL_PASSWORD: configSecrets.key },
    ];
    for (const env of refusals) {
      for (const app of ['api', 'consumer'] as const) {
        const process = await start(app, { ...stack.env, ...env });
        expect((await process.exited).code).toBe(78);
        expect(process.text).toMatch(/Invalid configuration:\n {2}[A-Z_]+: /);
      }
    }
    const cli = await runCli({ ...stack.env, ...refusals[0] }, ['migrate']);
    expect(cli.code).toBe(78);
    outputs.push({ what: 'cli with a refused configuration', text: cli.output });
  });

  it('the logger cuts every configured secret out of any line, wherever a library put it', async () => {
    // Defence in depth behind the redact paths: a line naming a connection string with its password, logged
    // through the apps' own logger (the built PlatformModule), comes out without the password.
    const dist = join(dirname(appEntry('api')), '..', '..', '..', 'libs');
    const script = `
      import 'reflect-metadata';
      import { Module } from '@nestjs/common';
      import { NestFactory } from '@nestjs/core';
      import { Logger, PinoLogger } from 'nestjs-pino';
      import { ConfigModule, loadConfig } from '${join(dist, 'config', 'src', 'index.js')}';
      import { PlatformModule } from '${join(dist, 'platform', 'src', 'index.js')}';
      class M {}
      Module({ imports: [ConfigModule.forRoot(loadConfig()), PlatformModule.forRoot('api')] })(M);
      const app = await NestFactory.createApplicationContext(M, { bufferLogs: true });
      app.useLogger(app.get(Logger));
      const logger = await app.resolve(PinoLogger);
      logger.warn({ url: process.env.REDIS_URL, nested: { key: process.env.PROBE_KEY } }, 'failed: ' + process.env.DATABASE_URL);
      await app.close();`;
    const env = {
      PATH: process.env['PATH'] ?? '',
      LOG_LEVEL: 'warn',
      DATABASE_URL: services.databaseUrl(),
      REDIS_URL: services.redisUrl(),
      KAFKA_SASL_MECHANISM: 'scram-sha-256',
      KAFKA_SASL_USERNAME: services.kafkaUser.name,
      KAFKA_SASL_PASSWORD: services.kafkaUser.password,
      API_KEYS: `${apiKeys.alpha}:alpha`,
      PROBE_KEY: `${apiKeys.alpha} and ${services.kafkaUser.password}`,
    };
    const { stdout } = await execFileAsync(process.execPath, ['--input-type=module', '-e', script], {
      env,
      cwd: join(dirname(appEntry('api')), '..', '..', '..', '..', '..', '..'),
    });
    outputs.push({ what: 'logger probe', text: stdout });
    const line = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
    expect(line['msg']).toMatch(/^failed: postgres:\/\/postgres:\[REDACTED\]@localhost:/);
    expect(line['url']).toBe(`rediss://:[REDACTED]@127.0.0.1:${services.redis.port}`);
    expect(line['nested']).toEqual({ key: '[REDACTED] and [REDACTED]' });
  });

  it('none of the secrets appears in any output', () => {
    outputs.push(...processes.map((p, i) => ({ what: `${p.app} #${i}`, text: p.text })));
    expect(outputs.length).toBeGreaterThan(10);
    const leaks: string[] = [];
    for (const { what, text } of outputs) {
      for (const value of allSecrets()) {
        for (const form of forms(value)) {
          if (text.includes(form)) leaks.push(`${what}: ${form.slice(0, 12)}...`);
        }
      }
    }
    expect(leaks).toEqual([]);
    // The redactions are visible where the credentials were.
    expect(outputs.map((o) => o.text).join('\n')).toContain('[Redacted]');
  });
});
