import { describe, expect, it } from 'vitest';
import { DEFAULTS, FAULT_KINDS, formatReport, runChaos } from './engine/index.js';

/**
 * The guarantees together (docs/architecture.md, "Guarantees"), under one fixed-seed round of every fault kind of the
 * chaos engine, one at a time: API and consumer SIGKILLs (the API's while keyless writes are in flight on it),
 * Postgres, Redis and Kafka outages, a slow broker (requests held past the produce timeout), FLUSHALL, a 1 -> 3 -> 1 scale, a replay of the last five minutes, the topics
 * recreated and re-baselined, while a mixed load of single and batch increments and activities runs: keyed writes
 * retried with the same keys until acknowledged, keyless increments that are acknowledged, retried with the keys an
 * outcome-unknown answer gives, or left ambiguous when no answer came, and probe counters read back after every
 * acknowledged write. Then: lag zero and the oracle (every acknowledged event applied exactly once, every counter
 * between its acknowledged sum and that plus its ambiguous writes, GET == Postgres, activities exactly as
 * acknowledged, no dead letter). `npm run chaos` runs the same engine for as long as asked; see docs/chaos.md.
 */
describe('chaos: one fixed-seed round of every fault kind under load', () => {
  it('keeps every guarantee', { timeout: 900_000 }, async () => {
    const report = await runChaos({
      ...DEFAULTS,
      seed: 20261126,
      rounds: 1,
      overlap: 0,
      clients: 4,
      pauseMs: 25,
      downtimeMs: 6000,
      recoveryMs: 2000,
      verbose: false,
      logs: 'on-failure',
    });
    const text = formatReport(report);
    console.log(text);

    expect(report.error, text).toBeUndefined();
    expect(report.violations, text).toEqual([]);
    for (const kind of FAULT_KINDS) expect(report.faultCounts[kind], kind).toBe(1);
    // Every fault was carried out as planned (the replay was taken by the group, the scale-down was clean).
    expect(
      report.episodes.flatMap((e) => e.faults.filter((f) => f.failed !== undefined)),
      text,
    ).toEqual([]);
    // Load went on throughout (how much depends on the machine's speed, so only that there was some).
    expect(report.load.acknowledged.counters).toBeGreaterThan(0);
    expect(report.load.acknowledged.activities).toBeGreaterThan(0);
    expect(report.oracle?.counters.equal).toBe(report.oracle?.counters.expected);
    // The Kafka outage sent writes down the write-through path.
    expect(report.load.stats.modes.get('write-through') ?? 0).toBeGreaterThan(0);
    // Keyless writes were part of the load, and the API was killed with some of them in flight on it.
    expect(report.load.stats.keyless.increment + report.load.stats.keyless['increment-batch']).toBeGreaterThan(0);
    const kills = report.episodes.flatMap((e) => e.faults.filter((f) => f.kind === 'api-kill'));
    expect(
      kills.map((f) => f.keylessInFlight ?? 0).every((n) => n > 0),
      text,
    ).toBe(true);
    // Read-your-writes was checked while the faults happened.
    expect(report.load.stats.probes.checks).toBeGreaterThan(0);
  });
});
