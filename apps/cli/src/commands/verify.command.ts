import { CounterViewRepository, type PendingFinding, ViewSweep } from '@app/counter-view';
import { TopicPartitions } from '@app/kafka';
import { LagMonitor, appliedThrough } from '@app/lag';
import { RedisClient } from '@app/redis';
import { CounterRepository, LedgerRepository } from '@app/store';
import { SingleBar } from 'cli-progress';
import { type Command, EXIT, UsageError } from './command.js';
import { table } from './format.js';
import { stringOption } from './targets.js';

interface Drift {
  name: string;
  served: number;
  expected: number;
  postgres: number;
  pendingNotApplied: number;
}

/**
 * Compares what the Redis view serves for a counter with what it should serve: Postgres' value plus the
 * pending deltas Postgres has not applied yet. A counter without a cached base is not checked: its next read
 * refills from Postgres. A drift seen once is checked again, so a commit landing between the two reads is not
 * reported.
 */
export const verifyCommand: Command = {
  name: 'verify',
  summary:
    'compare the served value (Redis view) with Postgres for all or sampled counters, and find pending deltas that are applied or never will be; --repair fixes both',
  usage: 'wb verify [--sample N] [--repair] [--json]',
  options: {
    sample: { type: 'string', description: 'check N random counters (default: all)' },
    repair: {
      type: 'boolean',
      description:
        "drop drifted counters' cached base (the next read refills it) and take applied or orphaned pending deltas out",
    },
  },
  run: async ({ config, app, options, json, print, note }) => {
    const sampleText = stringOption(options, 'sample');
    if (sampleText !== undefined && !/^\d+$/.test(sampleText)) throw new UsageError('--sample: a number');
    const nest = await app();
    // The connection is opened in the background at boot; with no offline queue, wait for it before the first read.
    await nest.get(RedisClient).whenReady(Math.max(10_000, config.redis.connectTimeoutMs * 5));
    const counters = nest.get(CounterRepository);
    const view = nest.get(CounterViewRepository);
    const ledger = nest.get(LedgerRepository);
    const names = await counters.names(sampleText === undefined ? undefined : Number(sampleText));

    const check = async (name: string): Promise<Drift | undefined> => {
      const snap = await view.read(name);
      if (!snap.base) return undefined;
      const pending = await view.pendingEntries(name);
      const applied = new Set(await ledger.contains(pending.map((p) => p.eventId)));
      const pendingNotApplied = pending.filter((p) => !applied.has(p.eventId)).reduce((n, p) => n + p.delta, 0);
      const postgres = (await counters.read(name)).value;
      const served = snap.base.value + snap.pendingSum;
      const expected = postgres + pendingNotApplied;
      return served === expected ? undefined : { name, served, expected, postgres, pendingNotApplied };
    };

    const bar =
      json || names.length < 1000
        ? undefined
        : new SingleBar({ format: 'verifying [{bar}] {value}/{total}', stream: process.stderr });
    bar?.start(names.length, 0);
    const suspects: string[] = [];
    for (const [i, name] of names.entries()) {
      if (await check(name)) suspects.push(name);
      bar?.update(i + 1);
    }
    bar?.stop();
    const drifted: Drift[] = [];
    for (const name of suspects) {
      const again = await check(name);
      if (again) drifted.push(again);
    }
    const repair = options['repair'] === true;
    // Pending deltas that are applied (a missed reconcile: an over-count) or will never be (orphans), as the
    // consumers' view sweep sees them; --repair takes them out as it does.
    const pending = await pendingFindings(nest, config, names, repair);
    if (repair) for (const d of drifted) await view.invalidate(d.name);

    if (json) {
      print(
        JSON.stringify({
          checked: names.length,
          drifted,
          pending,
          repaired: repair ? drifted.length + pending.length : 0,
        }),
      );
    } else {
      print(
        `checked ${names.length} counter(s): ${drifted.length} drifted, ${pending.length} with stale pending deltas`,
      );
      if (pending.length > 0) {
        print(
          table(
            ['counter', 'pending but applied', 'pending, never applied'],
            pending.map((p) => [p.name, p.applied.length, p.orphaned.length]),
          ),
        );
      }
      if (drifted.length > 0) {
        print(
          table(
            ['counter', 'served', 'expected', 'postgres', 'pending (not applied)'],
            drifted.map((d) => [d.name, d.served, d.expected, d.postgres, d.pendingNotApplied]),
          ),
        );
        note(
          repair
            ? `repaired: dropped ${drifted.length} cached base(s); the next read refills them`
            : 'run again with --repair to drop the drifted entries',
        );
      }
    }
    return (drifted.length > 0 || pending.length > 0) && !repair ? EXIT.drift : EXIT.ok;
  },
};

/** The view sweep over `names` (ViewSweep), with each counter's horizon from the consumer lag. */
async function pendingFindings(
  nest: { get<T>(type: new (...args: never[]) => T): T },
  config: { consumer: { groupId: string; viewSweep: { minAgeMs: number } }; kafka: { topics: { counters: string } } },
  names: string[],
  repair: boolean,
): Promise<PendingFinding[]> {
  const topic = config.kafka.topics.counters;
  const now = Date.now();
  const horizons = await nest
    .get(LagMonitor)
    .snapshot(config.consumer.groupId, [topic], now)
    .then((lags) => appliedThrough(lags, now))
    .catch(() => undefined);
  const partitions = nest.get(TopicPartitions);
  await partitions.load([topic]);
  const sweep = nest.get(ViewSweep);
  const findings: PendingFinding[] = [];
  for (let i = 0; i < names.length; i += 500) {
    const found = await sweep.check(names.slice(i, i + 500), {
      now,
      minAgeMs: config.consumer.viewSweep.minAgeMs,
      repair,
      appliedThrough: (name) => {
        const partition = partitions.partitionOf(topic, name);
        return partition === undefined ? undefined : horizons?.get(partition);
      },
    });
    findings.push(...found);
  }
  return findings;
}
