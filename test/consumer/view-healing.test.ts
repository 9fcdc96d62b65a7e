import { randomUUID } from 'node:crypto';
import { AppProcess, DelayProxy, TestStack, freePort, waitFor, waitForLagZero } from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The Redis view heals while writes go on. An API writes hot counters; the consumer reaches Redis through a proxy
 * that can cut it off (a network partition). Its reconciles after a commit then
 * fail: their applied ids stay pending while later reconciles move the base past them, an over-count that a hot
 * counter never refills away. And a delta whose event never reached Kafka (an API killed between Redis and Kafka)
 * stays pending for ever. The consumer's retries and its view sweep take both out: what a GET serves returns to what
 * was acknowledged.
 */
describe('the Redis view heals while writes go on', () => {
  let stack: TestStack;
  let proxy: DelayProxy;
  let api: AppProcess;
  let consumer: AppProcess;
  let base: string;
  const hot = `heal:${randomUUID()}`;
  let acknowledged = 0;

  beforeAll(async () => {
    stack = await TestStack.create();
    const redisUrl = new URL(stack.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379');
    proxy = await DelayProxy.start({ host: redisUrl.hostname, port: Number(redisUrl.port || 6379) });
    api = new AppProcess('api', { ...stack.env, LOG_LEVEL: 'warn' });
    const consumerPort = await freePort();
    consumer = new AppProcess('consumer', {
      ...stack.env,
      LOG_LEVEL: 'warn',
      CONSUMER_PORT: String(consumerPort),
      REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
      REDIS_CONNECT_TIMEOUT_MS: '300',
      CONSUMER_VIEW_SWEEP_INTERVAL_MS: '1000',
      CONSUMER_VIEW_SWEEP_MIN_AGE_MS: '1000',
    });
    await Promise.all([api.ready(Number(stack.env['API_PORT'])), consumer.ready(consumerPort)]);
    base = `http://127.0.0.1:${stack.env['API_PORT']}`;
  });
  afterAll(async () => {
    await Promise.all([api?.stop(), consumer?.stop()]);
    await proxy?.close();
    await stack?.dispose();
  });

  /** One write, answered before the next: `acknowledged` is what a GET must serve once nothing is in flight. */
  const write = async (name: string, by: number) => {
    const response = await fetch(`${base}/v1/counters/${name}/increment`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ by }),
    });
    expect(response.status).toBe(202);
  };
  const served = async (name: string) =>
    ((await (await fetch(`${base}/v1/counters/${name}`)).json()) as { value: number }).value;

  it('takes out the applied deltas of reconciles the consumer lost, while writes go on', async () => {
    for (let i = 0; i < 20; i++) await write(hot, 1);
    acknowledged += 20;
    // The consumer loses Redis: it goes on applying in Postgres, its reconciles fail.
    proxy.cut();
    for (let i = 0; i < 30; i++) await write(hot, 1);
    acknowledged += 30;
    await waitForLagZero(stack.kafka, stack.groupId, [stack.topics.counters], 60_000);
    await waitFor(
      async () =>
        Number(
          (await stack.query<{ value: string }>('SELECT value FROM counters WHERE name = $1', [hot]))[0]?.value,
        ) === acknowledged,
      { description: 'Postgres has every write' },
    );
    proxy.restore();
    // Writes go on; each check writes once more. Once the consumer's reconciles have moved the base up to all of
    // them, the view must serve exactly what was acknowledged: the lost reconciles' ids no longer pending on top.
    const baseValue = async () => Number(await stack.redis.hget(`${stack.keyPrefix}{c:${hot}}:base`, 'v'));
    await waitFor(
      async () => {
        await write(hot, 1);
        acknowledged += 1;
        await waitForLagZero(stack.kafka, stack.groupId, [stack.topics.counters], 60_000);
        return (await baseValue()) === acknowledged && (await served(hot)) === acknowledged;
      },
      { timeoutMs: 60_000, description: 'the served value back to the acknowledged writes' },
    ).catch(async (error: unknown) => {
      throw new Error(
        `${(error as Error).message}: base ${await baseValue()}, served ${await served(hot)}, acknowledged ${acknowledged}`,
      );
    });
  });

  it('drops a delta whose event never reached Kafka, once the group has applied past it', async () => {
    const name = `orphan:${randomUUID()}`;
    let total = 5;
    await write(name, 5);
    expect(await served(name)).toBe(5);
    // An API killed after its view update and before Kafka had the event: a pending delta no event will apply.
    const pending = `${stack.keyPrefix}{c:${name}}:pending`;
    await stack.redis.hset(pending, `public:lost#${randomUUID()}`, `40:${Date.now() - 10 * 60 * 1000}`);
    await stack.redis.hincrby(pending, ' sum', 40);
    expect(await served(name)).toBe(45);
    // Writes go on; the orphan's 40 must leave what is served.
    await waitFor(
      async () => {
        await write(name, 1);
        total += 1;
        return (await served(name)) === total;
      },
      { timeoutMs: 60_000, description: 'the orphan dropped' },
    ).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\n--- consumer ---\n${consumer.text.slice(-4000)}`);
    });
  });
});
