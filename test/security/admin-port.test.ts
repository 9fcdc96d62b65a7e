import { AppProcess, TestStack, freePort, parsePrometheus, scrapeMetrics, waitFor } from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ADMIN_PATHS = ['/metrics', '/health/live', '/health/ready'];

/**
 * Issue 8, security: with API_ADMIN_PORT / CONSUMER_ADMIN_PORT set, `/metrics` and `/health/*` are served on that port
 * only. The public port answers 404 for them (the API's as problem details) and serves the API as before; the admin
 * port serves nothing else. Without the variables (every other test) they stay on the app's port.
 */
describe('metrics and health on a separate admin port', () => {
  let stack: TestStack;
  let api: AppProcess;
  let consumer: AppProcess;
  let ports: { api: number; apiAdmin: number; consumer: number; consumerAdmin: number };

  beforeAll(async () => {
    stack = await TestStack.create();
    const [apiAdmin = 0, consumerAdmin = 0] = [await freePort(), await freePort()];
    ports = {
      api: Number(stack.env['API_PORT']),
      apiAdmin,
      consumer: Number(stack.env['CONSUMER_PORT']),
      consumerAdmin,
    };
    api = new AppProcess('api', { ...stack.env, API_ADMIN_PORT: String(apiAdmin) });
    consumer = new AppProcess('consumer', { ...stack.env, CONSUMER_ADMIN_PORT: String(consumerAdmin) });
    await Promise.all([api.ready(ports.apiAdmin), consumer.ready(ports.consumerAdmin)]);
  });
  afterAll(async () => {
    await Promise.all([api?.stop(), consumer?.stop()]);
    await stack?.dispose();
  });

  const get = (port: number, path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${port}${path}`, init);

  it('serves metrics and health on the admin ports', async () => {
    for (const [port, service] of [
      [ports.apiAdmin, 'api'],
      [ports.consumerAdmin, 'consumer'],
    ] as const) {
      const metrics = await get(port, '/metrics');
      expect(metrics.status).toBe(200);
      expect(metrics.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(metrics.headers.get('cache-control')).toBe('no-store');
      const samples = parsePrometheus(await metrics.text());
      expect(samples.some((s) => s.name === 'writebehind_ready' && s.labels['service'] === service)).toBe(true);

      const live = await get(port, '/health/live');
      expect(live.status).toBe(200);
      expect(await live.json()).toEqual({ status: 'ok' });
      const ready = await get(port, '/health/ready');
      expect(ready.status).toBe(200);
      expect(((await ready.json()) as { status: string }).status).toBe('ok');
      expect((await get(port, '/health/live', { method: 'HEAD' })).status).toBe(200);

      // Nothing else.
      expect((await get(port, '/v1/counters/x')).status).toBe(404);
      expect((await get(port, '/')).status).toBe(404);
      expect((await get(port, '/metrics', { method: 'POST' })).status).toBe(405);
    }
  });

  it('answers 404 for them on the public ports, and serves the API there as before', async () => {
    for (const path of ADMIN_PATHS) {
      const response = await get(ports.api, path);
      expect(response.status, path).toBe(404);
      expect(response.headers.get('content-type'), path).toMatch(/^application\/problem\+json/);
      expect((await get(ports.consumer, path)).status, path).toBe(404);
    }
    const name = `admin-port:${stack.id}`;
    const write = await get(ports.api, `/v1/counters/${name}/increment`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ by: 3 }),
    });
    expect(write.status).toBe(202);
    const read = (await (await get(ports.api, `/v1/counters/${name}`)).json()) as { value: number };
    expect(read.value).toBe(3);
    // The public requests are counted in the metrics the admin port serves (and the 404s under `unmatched`).
    await waitFor(
      async () => {
        const { sum } = await scrapeMetrics(ports.apiAdmin);
        const count = (route: string, status: string) => sum('writebehind_http_requests_total', { route, status });
        return count('/v1/counters/:name/increment', '202') >= 1 && count('unmatched', '404') >= ADMIN_PATHS.length;
      },
      { description: 'the public requests in the admin metrics' },
    );
  });

  it('keeps answering readiness until the app has drained, then closes with it', async () => {
    const exit = api.stop();
    // During the drain the admin port answers, 503 once draining (or not at all once the process is gone).
    const seen = new Set<number>();
    while (api.running) {
      const status = await get(ports.apiAdmin, '/health/ready').then(
        (r) => r.status,
        () => 0,
      );
      seen.add(status);
      if (status === 0) break;
    }
    expect(await exit).toEqual({ code: 0, signal: null });
    expect([...seen].every((s) => s === 200 || s === 503 || s === 0)).toBe(true);
    await expect(get(ports.apiAdmin, '/health/live')).rejects.toThrow();
  });
});
