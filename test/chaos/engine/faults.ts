import { setTimeout as sleep } from 'node:timers/promises';
import { runCli, waitFor, waitForLagZero } from '@app/testing';
import { Redis } from 'ioredis';
import kafkajs from 'kafkajs';
import { freeze, pidsByCommandLine, pidsWorkingIn } from './freeze.js';
import type { Prng } from './prng.js';
import type { AppSlot, ChaosSystem } from './system.js';

export const FAULT_KINDS = [
  'api-kill',
  'consumer-kill',
  'postgres-stop',
  'redis-stop',
  'redis-flush',
  'kafka-stop',
  'consumer-scale',
  'replay',
  'kafka-freeze',
  'kafka-slow',
  'postgres-freeze',
  'redis-freeze',
  'topic-recreate',
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

/** One fault with its parameters, all drawn from the schedule's PRNG when the schedule is made. */
export type FaultPlan =
  | { kind: 'api-kill'; pick: number; downMs: number; delayMs: number }
  | { kind: 'consumer-kill'; pick: number; downMs: number }
  | { kind: 'postgres-stop'; mode: 'fast' | 'immediate' | 'kill'; downMs: number }
  | { kind: 'redis-stop'; mode: 'stop' | 'kill'; downMs: number }
  | { kind: 'redis-flush' }
  | { kind: 'kafka-stop'; mode: 'stop' | 'kill'; downMs: number }
  | { kind: 'consumer-scale'; holdMs: number; pick: number }
  | { kind: 'replay'; ago: string }
  | { kind: 'kafka-freeze' | 'postgres-freeze' | 'redis-freeze'; downMs: number }
  | { kind: 'kafka-slow'; delayMs: number; downMs: number }
  | { kind: 'topic-recreate' };

export interface Episode {
  /** 0-based round: in each round every enabled kind is injected once. */
  round: number;
  index: number;
  faults: FaultPlan[];
  /** Pause after the faults healed and every app is ready again. */
  recoveryMs: number;
}

export interface ScheduleOptions {
  faults: readonly FaultKind[];
  downtimeMs: number;
  recoveryMs: number;
  overlap: number;
}

/**
 * What each kind acts on. Two faults share an episode only when they act on different things (a broker is not
 * frozen while it is stopped); a replay runs alone: it needs a stable group, Kafka and Postgres.
 */
const TARGET: Record<FaultKind, string> = {
  'api-kill': 'api',
  'consumer-kill': 'consumer-process',
  'consumer-scale': 'consumer-group',
  'postgres-stop': 'postgres',
  'postgres-freeze': 'postgres',
  'redis-stop': 'redis',
  'redis-flush': 'redis',
  'redis-freeze': 'redis',
  'kafka-stop': 'kafka',
  'kafka-freeze': 'kafka',
  'kafka-slow': 'kafka',
  replay: 'everything',
  'topic-recreate': 'everything',
};
const canPair = (a: FaultKind, b: FaultKind) =>
  TARGET[a] !== TARGET[b] && TARGET[a] !== 'everything' && TARGET[b] !== 'everything';

function plan(kind: FaultKind, rng: Prng, downtimeMs: number): FaultPlan {
  const down = () => Math.round(downtimeMs * rng.between(0.5, 1.5));
  switch (kind) {
    case 'api-kill':
      // The delay after a keyless write went out: a write-behind request takes a few ms (Redis, the producer's 5 ms
      // linger, Kafka), so the kill lands before, between or after its Redis and Kafka steps.
      return { kind, pick: rng.next(), downMs: rng.int(200, 3000), delayMs: rng.int(0, 8) };
    case 'consumer-kill':
      return { kind, pick: rng.next(), downMs: rng.int(200, 3000) };
    case 'postgres-stop':
      return { kind, mode: rng.pick(['fast', 'immediate', 'kill'] as const), downMs: down() };
    case 'redis-stop':
      return { kind, mode: rng.pick(['stop', 'kill'] as const), downMs: down() };
    case 'redis-flush':
      return { kind };
    case 'kafka-stop':
      return { kind, mode: rng.pick(['stop', 'kill'] as const), downMs: down() };
    case 'consumer-scale':
      return { kind, holdMs: down(), pick: rng.next() };
    case 'replay':
      return { kind, ago: '5m' };
    case 'topic-recreate':
      return { kind };
    case 'kafka-slow':
      // Every request to the broker held 1 to 4 s, one delay per episode: under the API's produce timeout (1.5 s) the
      // writes are slow and acknowledged by Kafka; past it the sends time out, the writes are written through while
      // the sends land late, and the breaker opens and half-opens against a broker that still answers.
      return { kind, delayMs: rng.int(1000, 4000), downMs: down() };
    case 'kafka-freeze':
    case 'postgres-freeze':
    case 'redis-freeze':
      // 2 to 6 s by default: longer than the API's produce timeout (1.5 s) and Redis' command timeout (2 s), so that
      // commands time out and are executed late; shorter than a consumer session (6 s) on average.
      return { kind, downMs: Math.round(downtimeMs * rng.between(0.25, 0.75)) };
  }
}

/**
 * The seeded fault schedule: rounds, each a shuffle of every enabled kind, so that every kind comes up once per
 * round; with probability `overlap` an episode takes the next kind of the round too (when it acts on something
 * else) and injects both at once.
 */
export function* schedule(rng: Prng, options: ScheduleOptions): Generator<Episode> {
  let index = 0;
  for (let round = 0; ; round++) {
    const order = rng.shuffle(options.faults);
    while (order.length > 0) {
      const first = order.shift() as FaultKind;
      const faults = [plan(first, rng, options.downtimeMs)];
      const next = order[0];
      if (next !== undefined && rng.chance(options.overlap) && canPair(first, next)) {
        order.shift();
        faults.push(plan(next, rng, options.downtimeMs));
      }
      const recoveryMs = Math.round(options.recoveryMs * rng.between(1, 2));
      yield { round, index: index++, faults, recoveryMs };
    }
  }
}

export interface FaultRecord {
  kind: FaultKind;
  /** What exactly was done, e.g. "SIGKILL api-2, restarted after 1.2 s". */
  detail: string;
  episode: number;
  /** When the fault was injected and when it was healed (epoch ms). */
  injectedAt: number;
  healedAt: number;
  /** Harness trouble carrying the fault out (a replay the group refused, a start that failed). */
  failed?: string;
  /** api-kill: keyless writes in flight on the API when it was killed. */
  keylessInFlight?: number;
}

/** What a fault asks of the load: an api-kill waits for keyless writes in flight on the API it kills. */
export interface KeylessWatch {
  keylessInFlight(apiUrl: string): number;
  whenKeylessInFlight(apiUrl: string, timeoutMs: number): Promise<boolean>;
}

/** Picks from `items` with a number in [0, 1) drawn beforehand. */
function pickWith<T>(items: readonly T[], x: number): T | undefined {
  return items[Math.min(items.length - 1, Math.floor(x * items.length))];
}

/** Carries out one fault: inject, keep it for its downtime, heal. Readiness is awaited by the caller. */
export async function inject(
  fault: FaultPlan,
  system: ChaosSystem,
  context: { episode: number; scaleTo: number; note: (line: string) => void; load: KeylessWatch },
): Promise<FaultRecord> {
  const injectedAt = Date.now();
  const record = (detail: string, failed?: string): FaultRecord => ({
    kind: fault.kind,
    detail,
    episode: context.episode,
    injectedAt,
    healedAt: Date.now(),
    ...(failed === undefined ? {} : { failed }),
  });
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  switch (fault.kind) {
    case 'api-kill': {
      const slot = pickWith(system.apis, fault.pick) as AppSlot;
      const cut = await keylessInFlight(context.load, `http://127.0.0.1:${slot.port}`, fault.delayMs);
      await slot.kill();
      await sleep(fault.downMs);
      slot.start();
      return {
        ...record(
          `SIGKILL ${slot.name} under load with ${cut} keyless write(s) in flight, restarted after ${seconds(fault.downMs)}`,
        ),
        keylessInFlight: cut,
      };
    }
    case 'consumer-kill': {
      const slot = pickWith(
        system.activeConsumers.filter((c) => c.running),
        fault.pick,
      );
      if (!slot) return record('no consumer running', 'nothing to kill');
      await slot.kill();
      await sleep(fault.downMs);
      slot.start();
      return record(`SIGKILL ${slot.name}, restarted after ${seconds(fault.downMs)}`);
    }
    case 'postgres-stop': {
      if (fault.mode === 'kill') await system.postgres.kill();
      else await system.postgres.stop(fault.mode);
      await sleep(fault.downMs);
      await system.postgres.restart();
      return record(
        `${fault.mode === 'kill' ? 'SIGKILL' : `pg_ctl stop -m ${fault.mode}`}, down ${seconds(Date.now() - injectedAt)}`,
      );
    }
    case 'redis-stop': {
      if (fault.mode === 'kill') await system.redis.kill();
      else await system.redis.stop();
      await sleep(fault.downMs);
      await system.redis.restart();
      return record(
        `${fault.mode === 'kill' ? 'SIGKILL' : 'SIGTERM'}, down ${seconds(Date.now() - injectedAt)}, back empty`,
      );
    }
    case 'redis-flush': {
      const redis = new Redis(system.redis.url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2000 });
      try {
        await redis.connect();
        const keys = await redis.dbsize();
        await redis.flushall();
        return record(`FLUSHALL (${keys} keys)`);
      } catch (error) {
        return record('FLUSHALL', (error as Error).message);
      } finally {
        redis.disconnect();
      }
    }
    case 'kafka-stop': {
      if (fault.mode === 'kill') await system.broker.kill();
      else await system.broker.stop();
      await sleep(fault.downMs);
      await system.broker.restart();
      return record(
        `${fault.mode === 'kill' ? 'SIGKILL' : 'SIGTERM (controlled shutdown)'}, down ${seconds(Date.now() - injectedAt)}`,
      );
    }
    case 'consumer-scale': {
      const before = system.activeConsumers.length;
      const added: AppSlot[] = [];
      for (let i = before; i < context.scaleTo; i++) added.push(await system.addConsumer(false));
      let failed: string | undefined;
      await Promise.all(added.map((slot) => slot.ready(120_000))).catch((error: unknown) => {
        failed = `scale-up: ${(error as Error).message.split('\n')[0]}`;
      });
      await sleep(fault.holdMs);
      // Back to the size before, leaving in a seeded order (the original member may be one of those leaving).
      const active = system.activeConsumers;
      const leaving: AppSlot[] = [];
      let x = fault.pick;
      while (active.length - leaving.length > before) {
        const remaining = active.filter((c) => !leaving.includes(c));
        leaving.push(pickWith(remaining, x) as AppSlot);
        x = (x * 7.31) % 1;
      }
      const exits = await Promise.all(leaving.map((slot) => system.removeConsumer(slot)));
      const unclean = exits
        .map((exit, i) => ({ exit, slot: leaving[i] }))
        .filter(({ exit }) => exit !== undefined && (exit.code !== 0 || exit.signal !== null));
      if (unclean.length > 0) {
        const list = unclean.map(({ exit, slot }) => `${slot?.name}: ${JSON.stringify(exit)}`).join(', ');
        failed = `${failed ? `${failed}; ` : ''}unclean exit on SIGTERM: ${list}`;
      }
      return record(
        `${before} -> ${before + added.length} consumers (${added.map((a) => a.name).join(', ')}) for ` +
          `${seconds(fault.holdMs)}, then SIGTERM ${leaving.map((l) => l.name).join(', ')}`,
        failed,
      );
    }
    case 'kafka-freeze': {
      // Produce requests already sent are answered late, after the API's timeout: those writes are written through
      // and land in Kafka as well (docs/architecture.md, fault model: a produce that times out but succeeded).
      const propsFile = `${system.broker.dir}/server.properties`;
      const n = await freeze(
        () => pidsByCommandLine((c) => c.includes('kafka.Kafka') && c.includes(propsFile)),
        fault.downMs,
      );
      return record(`SIGSTOP the broker (${n} process) for ${seconds(fault.downMs)}, then SIGCONT`);
    }
    case 'kafka-slow': {
      // The broker stays up and answers everything, late: every client (APIs, consumers, the harness) reaches it
      // through the system's delay proxy. The sends the API timed out on land after it wrote them through.
      const proxy = system.broker.proxy;
      if (!proxy) return record('no delay proxy in front of the broker', 'the broker was started without one');
      proxy.delayMs = fault.delayMs;
      await sleep(fault.downMs);
      proxy.delayMs = 0;
      return record(`every request to the broker held ${seconds(fault.delayMs)} for ${seconds(fault.downMs)}`);
    }
    case 'postgres-freeze': {
      const n = await freeze(() => pidsWorkingIn(system.postgres.dataDir), fault.downMs);
      return record(`SIGSTOP Postgres (${n} processes) for ${seconds(fault.downMs)}, then SIGCONT`);
    }
    case 'redis-freeze': {
      const port = `:${system.redis.port}`;
      const n = await freeze(
        () => pidsByCommandLine((c) => c.startsWith('redis-server') && c.includes(port)),
        fault.downMs,
      );
      return record(`SIGSTOP Redis (${n} process) for ${seconds(fault.downMs)}, then SIGCONT`);
    }
    case 'topic-recreate':
      return recreateTopics(system, record);
    case 'replay': {
      // A group that is rebalancing refuses a replay (exit 65): try again, as an operator would.
      let last = '';
      for (let attempt = 1; attempt <= 4; attempt++) {
        const result = await runCli(
          system.stack.env,
          ['replay', '--ago', fault.ago, '--execute', '--actor', 'chaos', '--timeout', '30s', '--json'],
          system.dist,
        );
        if (result.code === 0) {
          const plan = result.json<{ plan?: { reread: number; toApply: number }[] }>(0).plan ?? [];
          const reread = plan.reduce((n, p) => n + p.reread, 0);
          const how = result.json<{ how?: string }>().how ?? '';
          return record(`wb replay --ago ${fault.ago} --execute: ${reread} message(s) re-read; ${how}`);
        }
        last = `exit ${result.code}: ${result.output.trim().split('\n').slice(-3).join(' | ').slice(0, 400)}`;
        context.note(`replay attempt ${attempt} failed (${last}); retrying`);
        await sleep(3000);
      }
      return record(`wb replay --ago ${fault.ago} --execute`, last);
    }
  }
}

/**
 * Waits (10 s at most) until keyless writes are in flight on the API at `url` and still are `delayMs` after one went
 * out, so that the kill cuts writes whose client cannot know whether they were applied. How many are in flight.
 */
async function keylessInFlight(load: KeylessWatch, url: string, delayMs: number): Promise<number> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (!(await load.whenKeylessInFlight(url, deadline - Date.now()))) break;
    await sleep(delayMs);
    if (load.keylessInFlight(url) > 0) break;
  }
  return load.keylessInFlight(url);
}

/** Kafka's enum of config resource types (kafkajs is CommonJS: taken from its default export). */
const { ConfigResourceTypes } = kafkajs;

/**
 * The broker's data lost and the topics recreated, as the runbook handles it: `wb topics` recreates them and records
 * holds for the partitions whose offsets Postgres stored for the old logs, a consumer reports the hold, and the
 * operator runs `wb offsets rebaseline --execute` for both topics; writes go on throughout. With one broker, events
 * acknowledged but not applied yet are lost with its data (docs/runbook.md); that loss is not what this fault
 * checks, so the old logs are drained first: their max.message.bytes drops to 1, the API's sends fail and it
 * writes through, and the consumers apply everything the old logs hold. What it checks is the new logs: nothing of
 * them skipped as applied, nothing applied twice.
 */
async function recreateTopics(
  system: ChaosSystem,
  record: (detail: string, failed?: string) => FaultRecord,
): Promise<FaultRecord> {
  const { stack } = system;
  const admin = stack.kafka.admin();
  let drainedAt: number | undefined;
  await admin.connect();
  try {
    const { resources } = await admin.describeConfigs({
      resources: system.topics.map((name) => ({ type: ConfigResourceTypes.TOPIC, name })),
      includeSynonyms: false,
    });
    // alterConfigs replaces a topic's own settings: keep them, add the limit.
    await admin.alterConfigs({
      validateOnly: false,
      resources: resources.map((r) => ({
        type: ConfigResourceTypes.TOPIC,
        name: r.resourceName,
        configEntries: [
          ...r.configEntries
            .filter((e) => !e.isDefault && !e.readOnly && e.configName !== 'max.message.bytes')
            .map((e) => ({ name: e.configName, value: e.configValue })),
          { name: 'max.message.bytes', value: '1' },
        ],
      })),
    });
    await waitForLagZero(stack.kafka, stack.groupId, system.topics, 120_000);
    drainedAt = Date.now();
    await admin.deleteTopics({ topics: stack.allTopics });
    await waitFor(async () => !(await admin.listTopics()).some((t) => stack.allTopics.includes(t)), {
      timeoutMs: 60_000,
      description: 'the topics deleted',
    });
  } finally {
    await admin.disconnect();
  }
  const createdAt = Date.now();
  const created = await runCli(stack.env, ['topics', '--actor', 'chaos'], system.dist);
  if (created.code !== 0) return record('wb topics', `exit ${created.code}: ${created.output.slice(-300)}`);
  const holds = (created.stdout.match(/HELD /g) ?? []).length;
  const reported = await waitFor(
    async () => {
      for (const slot of system.activeConsumers) {
        const response = await fetch(`http://127.0.0.1:${slot.port}/health/ready`).catch(() => undefined);
        if (response && (await response.text()).includes('holding ')) return true;
      }
      return false;
    },
    { timeoutMs: 30_000, intervalMs: 250, description: 'a consumer to report a held partition' },
  ).catch(() => false);
  const rebaselined: string[] = [];
  let failed: string | undefined;
  for (const topic of ['counters', 'activities']) {
    const result = await runCli(
      stack.env,
      ['offsets', 'rebaseline', '--topic', topic, '--execute', '--actor', 'chaos', '--json'],
      system.dist,
    );
    if (result.code === 0) rebaselined.push(`${topic} ${result.json<{ rebaselined: number }>().rebaselined}`);
    else if (result.code === 65 && /nothing to re-baseline/.test(result.output)) rebaselined.push(`${topic} 0`);
    else failed = `wb offsets rebaseline --topic ${topic}: exit ${result.code}: ${result.output.slice(-300)}`;
  }
  return record(
    `old logs drained (max.message.bytes=1, writes through; lag 0 at ${new Date(drainedAt ?? 0).toISOString()}), ` +
      `${stack.allTopics.length} topics deleted, recreated from ${new Date(createdAt).toISOString()} by ` +
      `wb topics with ${holds} hold(s) recorded; a consumer reported a hold: ${reported ? 'yes' : 'no'}; ` +
      `re-baselined (partitions): ${rebaselined.join(', ')}`,
    failed,
  );
}
