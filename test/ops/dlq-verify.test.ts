import { AppProcess, EventLoad, TestStack, runCli, waitFor, waitForLagZero } from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe('ops CLI: dead letters, lag and drift', () => {
  let stack: TestStack;
  let load: EventLoad;
  let consumer: AppProcess;
  let api: AppProcess;
  const topics = () => [stack.topics.counters, stack.topics.activities];

  beforeAll(async () => {
    stack = await TestStack.create();
    load = new EventLoad(stack.kafka, stack.topics);
    await load.connect();
    // No view sweep: the stale pending deltas the last test plants are for `wb verify` to find.
    consumer = new AppProcess('consumer', { ...stack.env, LOG_LEVEL: 'warn', CONSUMER_VIEW_SWEEP_INTERVAL_MS: '0' });
    api = new AppProcess('api', { ...stack.env, LOG_LEVEL: 'warn' });
    await Promise.all([consumer.ready(Number(stack.env['CONSUMER_PORT'])), api.ready(Number(stack.env['API_PORT']))]);
  });
  afterAll(async () => {
    await Promise.all([consumer.stop(), api.stop()]);
    await load.disconnect();
    await stack.dispose();
  });

  it('redrives dead letters made by a bug after the fix, applying each once', async () => {
    // The bug: a bad migration forbids values of 1,000 or more, so valid increments are rejected for good
    // (23514) and dead-lettered.
    await stack.query('ALTER TABLE counters ADD CONSTRAINT buggy CHECK (value < 1000)');
    const events = Array.from({ length: 5 }, () => load.counterEvent('bugged', 600));
    for (const event of events) await load.send([event]);
    await load.send([load.counterEvent('fine', 1)]);
    await waitForLagZero(stack.kafka, stack.groupId, topics());

    const listed = await runCli(stack.env, ['dlq', 'list', '--json']);
    expect(listed.code).toBe(0);
    const letters = listed.json<{ deadLetters: { errorClass: string; count: number }[] }>().deadLetters;
    expect(letters.reduce((n, l) => n + l.count, 0)).toBe(4);
    const shown = await runCli(stack.env, ['dlq', 'show', '--json']);
    const first = shown.json<{ messages: { headers: Record<string, string>; key: string }[] }>().messages[0];
    expect(first?.key).toBe('bugged');
    expect(first?.headers['dlq-original-topic']).toBe(stack.topics.counters);
    expect(first?.headers['dlq-error-code']).toBe('23514');

    // The fix, then a dry run (changes nothing), then the redrive.
    await stack.query('ALTER TABLE counters DROP CONSTRAINT buggy');
    const dry = await runCli(stack.env, ['dlq', 'redrive']);
    expect(dry.code).toBe(0);
    expect(dry.output).toMatch(/dry run/);
    const redriven = await runCli(stack.env, ['dlq', 'redrive', '--execute', '--json']);
    expect(redriven.json<{ redriven: number }>().redriven).toBe(4);
    await waitFor(async () => {
      const [row] = await stack.query<{ value: string }>("SELECT value FROM counters WHERE name = 'bugged'");
      return Number(row?.value) === 3000;
    });
    // Redriving again sends nothing: each letter goes back once; and nothing was applied twice.
    const again = await runCli(stack.env, ['dlq', 'redrive', '--execute', '--json']);
    expect(again.json<{ redriven: number }>().redriven).toBe(0);
    await waitForLagZero(stack.kafka, stack.groupId, topics());
    const [row] = await stack.query<{ value: string }>("SELECT value FROM counters WHERE name = 'bugged'");
    expect(Number(row?.value)).toBe(3000);
  });

  it('reports lag per partition, with the group and its members', async () => {
    const lag = await runCli(stack.env, ['lag', '--json']);
    expect(lag.code).toBe(0);
    const report = lag.json<{
      state: string;
      members: unknown[];
      partitions: { lagMessages: number; lagSeconds: number }[];
    }>();
    expect(report.state).toBe('Stable');
    expect(report.members).toHaveLength(1);
    expect(report.partitions).toHaveLength(6);
    expect(report.partitions.every((p) => p.lagMessages === 0 && p.lagSeconds === 0)).toBe(true);
    const human = await runCli(stack.env, ['lag']);
    expect(human.stdout).toMatch(/total lag: 0 message/);
  });

  it('finds drift between the view and Postgres, and repairs it', async () => {
    const base = `http://127.0.0.1:${stack.env['API_PORT']}`;
    await fetch(`${base}/v1/counters/drifty/increment`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"by":5}',
    });
    await waitFor(async () => (await stack.query("SELECT 1 FROM counters WHERE name = 'drifty'")).length === 1);
    await waitFor(
      async () => ((await (await fetch(`${base}/v1/counters/drifty`)).json()) as { value: number }).value === 5,
    );
    const clean = await runCli(stack.env, ['verify']);
    expect(clean.code, clean.output).toBe(0);

    // Corrupt the cached base behind the system's back.
    await stack.redis.hset(`${stack.keyPrefix}{c:drifty}:base`, 'v', '999');
    const found = await runCli(stack.env, ['verify', '--json']);
    expect(found.code, found.output).toBe(2);
    expect(found.json<{ drifted: { name: string; served: number; expected: number }[] }>().drifted).toEqual([
      expect.objectContaining({ name: 'drifty', served: 999, expected: 5 }),
    ]);
    const repaired = await runCli(stack.env, ['verify', '--repair']);
    expect(repaired.code, repaired.output).toBe(0);
    expect(((await (await fetch(`${base}/v1/counters/drifty`)).json()) as { value: number }).value).toBe(5);
    const after = await runCli(stack.env, ['verify']);
    expect(after.code, after.output).toBe(0);
  });

  it('finds pending deltas that are applied or will never be, and takes them out with --repair', async () => {
    const base = `http://127.0.0.1:${stack.env['API_PORT']}`;
    const write = await fetch(`${base}/v1/counters/stale-pending/increment`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ by: 3 }),
    });
    const { eventId } = (await write.json()) as { eventId: string };
    await waitForLagZero(stack.kafka, stack.groupId, topics());
    // A reconcile that never happened (its applied id back in pending), and an orphan no event will ever apply.
    const pending = `${stack.keyPrefix}{c:stale-pending}:pending`;
    const longAgo = Date.now() - 10 * 60 * 1000;
    await stack.redis.hset(pending, eventId, `3:${longAgo}`, 'public:never-sent#x', `7:${longAgo}`);
    await stack.redis.hincrby(pending, ' sum', 10);

    const found = await runCli(stack.env, ['verify', '--json']);
    expect(found.code, found.output).toBe(2);
    expect(found.json<{ pending: { name: string; applied: string[]; orphaned: string[] }[] }>().pending).toEqual([
      { name: 'stale-pending', applied: [eventId], orphaned: ['public:never-sent#x'] },
    ]);
    const repaired = await runCli(stack.env, ['verify', '--repair']);
    expect(repaired.code, repaired.output).toBe(0);
    expect(((await (await fetch(`${base}/v1/counters/stale-pending`)).json()) as { value: number }).value).toBe(3);
    expect((await runCli(stack.env, ['verify'])).code).toBe(0);
  });
});
