import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AppProcess,
  TestStack,
  WriteLoad,
  consumerLag,
  dumpSchema,
  restoreDump,
  runCli,
  scrapeMetrics,
  waitFor,
} from '@app/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

describe('ops CLI: replay', () => {
  let stack: TestStack;
  const apps: AppProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'wb-replay-'));

  beforeAll(async () => {
    stack = await TestStack.create();
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.stop()));
  });
  afterAll(async () => {
    await stack.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  const start = async (app: 'api' | 'consumer') => {
    const process = new AppProcess(app, { ...stack.env, LOG_LEVEL: 'warn' });
    apps.push(process);
    await process.ready(Number(stack.env[app === 'api' ? 'API_PORT' : 'CONSUMER_PORT']));
    return process;
  };
  const stop = async (process: AppProcess) => {
    await process.stop();
    apps.splice(apps.indexOf(process), 1);
  };
  const topics = () => [stack.topics.counters, stack.topics.activities];
  /** Postgres' counters of one load (its counter names start with its prefix). */
  const postgresTotals = async (prefix: string) =>
    Object.fromEntries(
      (
        await stack.query<{ name: string; value: string }>(
          'SELECT name, value FROM counters WHERE starts_with(name, $1) ORDER BY name',
          [`${prefix}-`],
        )
      ).map((r) => [r.name, Number(r.value)]),
    );
  const expectTotals = (load: WriteLoad, prefix: string) =>
    waitFor(
      async () => {
        const expected = Object.fromEntries([...load.oracle].sort());
        return JSON.stringify(await postgresTotals(prefix)) === JSON.stringify(expected);
      },
      { timeoutMs: 120_000, description: 'Postgres to equal the oracle' },
    );

  it('restores Postgres from a dump taken mid-load, replays from that moment, and ends exact', async () => {
    await start('api');
    const consumer = await start('consumer');
    const load = new WriteLoad({
      baseUrl: `http://127.0.0.1:${stack.env['API_PORT']}`,
      clients: 6,
      counters: 6,
      prefix: 'restore',
    });
    await load.until((l) => l.acked >= 400);
    const dumpedAt = new Date().toISOString();
    const dump = join(dir, 'mid-load.dump');
    dumpSchema(stack.env['DATABASE_URL'] ?? '', stack.schema, dump);
    await load.until((l) => l.acked >= 1200);
    await load.stop();
    await expectTotals(load, 'restore');

    // Disaster: Postgres comes back from the dump, missing everything applied after it.
    await stop(consumer);
    await stack.query(`DROP SCHEMA "${stack.schema}" CASCADE`);
    restoreDump(stack.env['DATABASE_URL'] ?? '', dump);
    expect(JSON.stringify(await postgresTotals('restore'))).not.toBe(
      JSON.stringify(Object.fromEntries([...load.oracle].sort())),
    );

    const dry = await runCli(stack.env, ['replay', '--to-datetime', dumpedAt, '--json']);
    expect(dry.code).toBe(0);
    const plan = dry.json<{ plan: { toApply: number; reread: number }[] }>(0).plan;
    expect(plan.reduce((n, p) => n + p.reread, 0)).toBeGreaterThan(0);
    expect(plan.reduce((n, p) => n + p.toApply, 0)).toBeGreaterThan(0);

    const executed = await runCli(stack.env, [
      'replay',
      '--to-datetime',
      dumpedAt,
      '--execute',
      '--actor',
      'test-operator',
      '--json',
    ]);
    expect(executed.code).toBe(0);
    expect(executed.json<{ how: string }>().how).toContain('offsets set');
    await start('consumer');
    await expectTotals(load, 'restore');
    // And the view follows Postgres' restored rows (their versions never go back).
    for (const [name, value] of load.oracle) {
      const served = (await (await fetch(`http://127.0.0.1:${stack.env['API_PORT']}/v1/counters/${name}`)).json()) as {
        value: number;
      };
      expect(served.value).toBe(value);
    }
    const audit = await stack.query<{ actor: string; outcome: string }>(
      "SELECT actor, outcome FROM ops_audit WHERE command = 'replay' ORDER BY id",
    );
    expect(audit.map((a) => a.outcome)).toEqual(['dry-run', expect.stringMatching(/^executed/)]);
    expect(audit[1]?.actor).toBe('test-operator');
  });

  it('replays the last hour on a live group while writes go on: only the new writes change totals', async () => {
    await start('api');
    const consumer = await start('consumer');
    const load = new WriteLoad({
      baseUrl: `http://127.0.0.1:${stack.env['API_PORT']}`,
      clients: 4,
      counters: 4,
      prefix: 'live',
    });
    await load.until((l) => l.acked >= 300);
    const before = (await scrapeMetrics(Number(stack.env['CONSUMER_PORT']))).sum(
      'writebehind_consumer_events_deduplicated_total',
      { reason: 'offset' },
    );

    const replay = await runCli(stack.env, ['replay', '--ago', '1h', '--execute', '--json']);
    expect(replay.code).toBe(0);
    const plan = replay.json<{ plan: { reread: number; alreadyApplied: number }[] }>(0).plan;
    const reread = plan.reduce((n, p) => n + p.reread, 0);
    expect(reread).toBeGreaterThan(0);
    expect(replay.json<{ how: string }>().how).toContain('sought by the running members');

    await load.until((l) => l.acked >= 600);
    await load.stop();
    await expectTotals(load, 'live');
    await waitFor(async () => (await consumerLag(stack.kafka, stack.groupId, topics())).every((p) => p.lag === 0), {
      description: 'the group to re-read everything',
    });
    // Every re-read event was skipped as already applied (below Postgres' offset).
    const after = (await scrapeMetrics(Number(stack.env['CONSUMER_PORT']))).sum(
      'writebehind_consumer_events_deduplicated_total',
      { reason: 'offset' },
    );
    expect(after - before).toBeGreaterThanOrEqual(reread);
    expect(consumer.running).toBe(true);
  });

  it('refuses bad requests clearly and changes nothing', async () => {
    const offsetsBefore = await consumerLag(stack.kafka, stack.groupId, topics());
    const requestsBefore = await stack.query('SELECT id FROM replay_requests');
    const cases: [string[], number, RegExp][] = [
      [['replay', '--to-earliest', '--group', 'no-such-group', '--execute'], 65, /unknown/],
      [['replay', '--to-datetime', '2999-01-01T00:00:00Z', '--execute'], 65, /future/],
      [['replay', '--to-earliest', '--partitions', '7', '--execute'], 65, /no partition 7/],
      [['replay', '--to-offset', '999999999', '--execute'], 65, /past the end/],
      [['replay', '--to-datetime', 'yesterday'], 64, /ISO 8601/],
      [['replay', '--ago', '1h', '--to-earliest'], 64, /exactly one/],
      [['replay', '--to-earliest', '--partitions', 'x'], 64, /partition numbers/],
      [['replay', '--bogus'], 64, /Unknown option/],
    ];
    for (const [args, code, message] of cases) {
      const result = await runCli(stack.env, args);
      expect({ args, code: result.code }).toEqual({ args, code });
      expect(result.output).toMatch(message);
    }
    expect(await consumerLag(stack.kafka, stack.groupId, topics())).toEqual(offsetsBefore);
    expect(await stack.query('SELECT id FROM replay_requests')).toEqual(requestsBefore);
  });
});
