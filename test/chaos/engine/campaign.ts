import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitForLagZero } from '@app/testing';
import { type FaultKind, type FaultRecord, inject, schedule } from './faults.js';
import { ChaosLoad, type LoadStats, emptyStats } from './load.js';
import type { ChaosOptions } from './options.js';
import { type OracleResult, checkOracle } from './oracle.js';
import { Prng } from './prng.js';
import { ChaosSystem } from './system.js';

export interface EpisodeRecord {
  index: number;
  round: number;
  faults: FaultRecord[];
  /** When every app answered ready again after the faults healed (epoch ms); undefined if it never did. */
  readyAt: number | undefined;
}

export interface ChaosReport {
  seed: number;
  options: ChaosOptions;
  startedAt: number;
  /** When the fault phase began and ended, the drain ended, lag reached zero, and the checks ended. */
  phases: { faultsFrom: number; faultsTo: number; drained: number; lagZero: number; checked: number };
  episodes: EpisodeRecord[];
  faultCounts: Record<FaultKind, number>;
  load: {
    stats: LoadStats;
    acknowledged: { counters: number; activities: number };
    unacknowledged: number;
    /** Keyless increments left ambiguous (no answer): writes (requests), items, and the sum of their deltas. */
    ambiguous: { writes: number; items: number; sum: number };
  };
  lag: { maxMessages: number; maxMessagesAt: number | undefined; maxSeconds: number; samples: number };
  unexpectedExits: ChaosSystem['unexpectedExits'];
  oracle: OracleResult | undefined;
  violations: string[];
  /** The run could not be carried out (a server would not start, lag never reached zero): no verdict. */
  error: string | undefined;
  logDir: string;
}

/**
 * One chaos run: the private system up, the load started, seeded fault episodes until the duration (or the
 * rounds) are done, each followed by recovery (every app ready again) and a pause; then every service up, the
 * load drained (every outstanding write retried until acknowledged), lag zero, and the oracle checked.
 */
export async function runChaos(options: ChaosOptions, log: (line: string) => void = () => undefined) {
  const startedAt = Date.now();
  const stamp = (at = Date.now()) => `+${clock(at - startedAt)}`;
  const say = (line: string) => log(`${stamp()} ${line}`);
  const logDir = options.logDir ?? (await mkdtemp(join(tmpdir(), `wb-chaos-${options.seed}-`)));
  const rng = new Prng(options.seed);
  const episodes: EpisodeRecord[] = [];
  const violations: string[] = [];
  const lag = { maxMessages: 0, maxMessagesAt: undefined as number | undefined, maxSeconds: 0, samples: 0 };
  const phases = { faultsFrom: 0, faultsTo: 0, drained: 0, lagZero: 0, checked: 0 };
  let oracle: OracleResult | undefined;
  let error: string | undefined;
  let load: ChaosLoad | undefined;
  let sampling = true;
  let sampler: Promise<void> = Promise.resolve();

  say(`starting a private Kafka broker, Postgres and Redis (seed ${options.seed})`);
  const system = await ChaosSystem.start(options);
  try {
    say(
      `kafka ${system.broker.brokers}, postgres ${system.postgres.url}, redis ${system.redis.url}; ` +
        `starting ${options.apis} API and ${options.consumers} consumer process(es)`,
    );
    await system.boot();
    load = new ChaosLoad({
      apiUrls: system.apiUrls,
      clients: options.clients,
      probes: options.probes,
      counters: options.counters,
      actors: options.actors,
      pauseMs: options.pauseMs,
      rng: rng.fork('load'),
    });
    load.start();
    sampler = (async () => {
      while (sampling) {
        const now = await system.lag().catch(() => undefined);
        if (now) {
          lag.samples += 1;
          if (now.messages > lag.maxMessages) {
            lag.maxMessages = now.messages;
            lag.maxMessagesAt = Date.now();
          }
          lag.maxSeconds = Math.max(lag.maxSeconds, now.seconds);
        }
        await sleep(1000);
      }
    })();
    // Let the load reach a steady state before the first fault.
    await sleep(3000);
    say(`load running (${options.clients} clients); injecting faults`);
    phases.faultsFrom = Date.now();

    const episodesOf = schedule(rng.fork('schedule'), options);
    for (const episode of episodesOf) {
      const elapsed = Date.now() - phases.faultsFrom;
      if (options.rounds !== undefined ? episode.round >= options.rounds : elapsed >= options.durationMs) break;
      say(`episode ${episode.index + 1}: ${episode.faults.map((f) => f.kind).join(' + ')}`);
      const ready = load.windows.open(episode.faults.map((f) => f.kind));
      const context = { episode: episode.index, scaleTo: options.scaleTo, note: say, load };
      const faults = await Promise.all(
        episode.faults.map((fault) =>
          inject(fault, system, context).catch((failure: unknown): FaultRecord => ({
            kind: fault.kind,
            detail: 'harness error',
            episode: episode.index,
            injectedAt: Date.now(),
            healedAt: Date.now(),
            failed: (failure as Error).message.split('\n')[0] ?? 'unknown',
          })),
        ),
      );
      for (const f of faults) say(`  ${f.kind}: ${f.detail}${f.failed ? ` [${f.failed}]` : ''}`);
      const record: EpisodeRecord = { index: episode.index, round: episode.round, faults, readyAt: undefined };
      episodes.push(record);
      try {
        const restarted = await system.settle(180_000);
        record.readyAt = Date.now();
        ready(record.readyAt);
        const slowest = Math.max(...faults.map((f) => f.healedAt));
        say(
          `  all ready ${((record.readyAt - slowest) / 1000).toFixed(1)} s after healing` +
            (restarted.length > 0 ? ` (had to start: ${restarted.join(', ')})` : ''),
        );
      } catch (failure) {
        violations.push(
          `G5: not every app was ready 180 s after episode ${episode.index + 1} healed: ${(failure as Error).message.split('\n')[0]}`,
        );
        say('  recovery failed: stopping the fault phase');
        break;
      }
      await sleep(episode.recoveryMs);
    }
    phases.faultsTo = Date.now();

    say('faults done: every service up, draining the load (outstanding writes retried until acknowledged)');
    await system.settle(180_000);
    await load.stop(options.drainTimeoutMs);
    phases.drained = Date.now();
    say(`load stopped: ${load.acknowledged} events acknowledged, ${load.unacknowledged.length} unacknowledged`);
    await waitForLagZero(system.stack.kafka, system.stack.groupId, system.topics, 300_000);
    phases.lagZero = Date.now();
    say('lag zero; checking the oracle');
    oracle = await checkOracle(system, load);
    phases.checked = Date.now();
    violations.push(...oracle.violations);
  } catch (failure) {
    error = (failure as Error).stack ?? String(failure);
    say(`run failed: ${(failure as Error).message.split('\n')[0]}`);
  } finally {
    sampling = false;
    await sampler;
    if (load && phases.drained === 0) await load.stop(0).catch(() => undefined);
    await system.saveLogs(logDir).catch(() => undefined);
    await system.dispose();
  }

  for (const exit of system.unexpectedExits) {
    violations.push(
      `${exit.slot} (process ${exit.generation}) exited by itself at ${stamp(exit.at)}: ${JSON.stringify(exit.exit)}`,
    );
  }
  const faultCounts = Object.fromEntries(
    options.faults.map((kind) => [kind, episodes.flatMap((e) => e.faults).filter((f) => f.kind === kind).length]),
  ) as Record<FaultKind, number>;
  const report: ChaosReport = {
    seed: options.seed,
    options,
    startedAt,
    phases,
    episodes,
    faultCounts,
    load: {
      stats: load?.stats ?? emptyStats(),
      acknowledged: { counters: load?.counterAcks.size ?? 0, activities: load?.activityAcks.size ?? 0 },
      unacknowledged: load?.unacknowledged.length ?? 0,
      ambiguous: {
        writes: new Set(load?.ambiguous.map((a) => a.request)).size,
        items: load?.ambiguous.length ?? 0,
        sum: load?.ambiguous.reduce((sum, a) => sum + a.by, 0) ?? 0,
      },
    },
    lag,
    unexpectedExits: system.unexpectedExits,
    oracle,
    violations,
    error,
    logDir,
  };
  if (options.logs === 'on-failure' && !error && violations.length === 0) {
    await rm(logDir, { recursive: true, force: true });
    report.logDir = '(deleted after the pass)';
    return report;
  }
  await writeFile(
    join(logDir, 'report.json'),
    JSON.stringify(report, (_k, v: unknown) => (v instanceof Map ? (Object.fromEntries(v) as unknown) : v), 2),
  ).catch(() => undefined);
  return report;
}

/** mm:ss.s */
export function clock(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${(s % 60).toFixed(1).padStart(4, '0')}`;
}
