import { AppProcess, DelayProxy, TestStack, waitFor } from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Read-your-writes from the first write a new API process takes. A restarted API used to listen before its Redis
 * connection was ready: a write that came in meanwhile failed to reach the view ("Stream isn't writeable"), was
 * acknowledged all the same (Kafka had it), and reads through the other processes left it out until the consumer
 * applied it, while Redis was up all along (found by the chaos campaign: an api-kill, then a probe's read 3 short).
 * Here the API reaches Redis through a proxy that holds each command 1.5 s, so its connection is ready seconds after
 * the rest of the app; the test writes as soon as the port takes connections.
 */
describe('an API whose Redis connection comes up after the rest of it', () => {
  let stack: TestStack;
  let proxy: DelayProxy;
  let api: AppProcess;

  beforeAll(async () => {
    stack = await TestStack.create();
    const redis = new URL(stack.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379');
    proxy = await DelayProxy.start({ host: redis.hostname, port: Number(redis.port || 6379) });
    proxy.delayMs = 1500;
    api = new AppProcess('api', {
      ...stack.env,
      LOG_LEVEL: 'warn',
      REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
      // Commands wait 1.5 s in the proxy: time them out later than that.
      REDIS_CONNECT_TIMEOUT_MS: '15000',
    });
  });
  afterAll(async () => {
    await api?.stop();
    await proxy?.close();
    await stack?.dispose();
  });

  it('takes writes once the view can, so the first acknowledged write is served', async () => {
    const base = `http://127.0.0.1:${stack.env['API_PORT']}`;
    const first = await waitFor(
      async () => {
        try {
          const response = await fetch(`${base}/v1/counters/boot:first/increment`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ by: 5 }),
          });
          return response.status === 202 ? ((await response.json()) as { value: number | null }) : undefined;
        } catch {
          return undefined; // not listening yet
        }
      },
      { timeoutMs: 90_000, intervalMs: 20, description: 'the first write acknowledged' },
    );
    proxy.delayMs = 0;
    // The answer's value is the view's: null when the write did not reach it.
    expect(first.value).toBe(5);
    const read = (await (await fetch(`${base}/v1/counters/boot:first`)).json()) as { value: number };
    expect(read.value).toBe(5);
  });
});
