import { AppProcess, TestStack, freePort, uniqueName, waitFor } from '@app/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

describe('apps boot, report health, and shut down', () => {
  let stack: TestStack;
  const running: AppProcess[] = [];
  const start = (app: 'api' | 'consumer', env: Record<string, string> = {}) => {
    const process = new AppProcess(app, { ...stack.env, ...env });
    running.push(process);
    return process;
  };

  beforeAll(async () => {
    stack = await TestStack.create();
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((p) => p.stop()));
  });
  afterAll(async () => {
    await stack.dispose();
  });

  it.each([
    ['api', 'API_PORT', ['reads', 'writes']],
    ['consumer', 'CONSUMER_PORT', ['kafka', 'postgres', 'redis']],
  ] as const)('%s is ready, serves liveness and metrics, and exits 0 on SIGTERM', async (app, portVar, checks) => {
    const port = Number(stack.env[portVar]);
    const process = start(app);
    await process.ready(port);

    const ready = await fetch(`http://127.0.0.1:${port}/health/ready`);
    const body = (await ready.json()) as { status: string; info: Record<string, { status: string }> };
    expect(body.status).toBe('ok');
    expect(Object.keys(body.info).sort()).toEqual(checks);

    const live = await fetch(`http://127.0.0.1:${port}/health/live`);
    expect(live.status).toBe(200);

    const metrics = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await metrics.text()).toMatch(new RegExp(`process_cpu_user_seconds_total\\{service="${app}"\\} \\d`));

    const exit = await process.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(process.text).toContain('SIGTERM: draining');
    expect(process.text).toContain('stopped cleanly');
  });

  it('refuses to boot on a bad environment variable, naming it', async () => {
    const process = start('api', { API_PORT: 'eighty', KAFKA_BROKERS: 'no-port-here' });
    const exit = await process.exited;
    expect(exit.code).toBe(78);
    expect(process.text).toContain('API_PORT: an integer from 0 to 65535');
    expect(process.text).toContain('KAFKA_BROKERS');
    expect(process.text).toContain('Refusing to start');
  });

  it('survives Postgres killing its connections (pg_terminate_backend) and uses fresh ones', async () => {
    const applicationName = uniqueName('pgkill');
    const port = Number(stack.env['API_PORT']);
    const process = start('api', { DATABASE_APPLICATION_NAME: applicationName });
    await process.ready(port);

    const killed = await waitFor(
      async () => {
        const rows = await stack.query<{ killed: boolean }>(
          `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE application_name = $1`,
          [applicationName],
        );
        return rows.length > 0 ? rows : undefined;
      },
      { description: 'the api to hold a Postgres connection' },
    );
    expect(killed.every((r) => r.killed)).toBe(true);

    // The pool reported the dropped idle connection as an error event, which the app logged and survived.
    await waitFor(() => process.text.includes('postgres connection error'), { description: 'the error logged' });
    // It is still there and serves readiness from a new connection.
    await waitFor(
      async () => {
        const ready = await fetch(`http://127.0.0.1:${port}/health/ready`);
        const rows = await stack.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1`,
          [applicationName],
        );
        return ready.status === 200 && (rows[0]?.n ?? 0) > 0;
      },
      { description: 'ready again on a new connection' },
    );
    expect(process.running).toBe(true);
  });

  it('boots with Redis and Postgres unreachable, reports reads not ready, and stays alive', async () => {
    const deadRedis = `redis://127.0.0.1:${await freePort()}`;
    const deadPostgres = `postgres://postgres@127.0.0.1:${await freePort()}/test`;
    const port = Number(stack.env['API_PORT']);
    const process = start('api', { REDIS_URL: deadRedis, DATABASE_URL: deadPostgres });
    const ready = await waitFor(
      async () => {
        if (!process.running) throw new Error(process.text);
        const response = await fetch(`http://127.0.0.1:${port}/health/ready`);
        return response.status === 503 ? ((await response.json()) as { error: Record<string, unknown> }) : undefined;
      },
      { description: 'a 503 from /health/ready' },
    );
    // Writes still have Kafka; reads have neither Redis nor Postgres.
    expect(Object.keys(ready.error)).toEqual(['reads']);
    expect((await fetch(`http://127.0.0.1:${port}/health/live`)).status).toBe(200);
    expect(process.running).toBe(true);
  });
});
