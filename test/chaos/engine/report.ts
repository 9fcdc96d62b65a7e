import { type ChaosReport, clock } from './campaign.js';

const sorted = (map: Map<number | string, number>) =>
  [...map].sort(([a], [b]) => (String(a) < String(b) ? -1 : 1)).map(([k, v]) => `${k === 0 ? 'no answer' : k} ×${v}`);

/** The human report `npm run chaos` prints. */
export function formatReport(report: ChaosReport): string {
  const { options, phases, load, lag, oracle } = report;
  const at = (t: number) => `+${clock(t - report.startedAt)}`;
  const lines: string[] = [];
  const faultPhase = phases.faultsTo > 0 ? phases.faultsTo - phases.faultsFrom : 0;
  lines.push('', '=== chaos run report ===');
  lines.push(
    `seed ${report.seed}; ${options.rounds === undefined ? `duration ${clock(options.durationMs)}` : `${options.rounds} round(s)`}; ` +
      `fault phase ${clock(faultPhase)}; whole run ${clock((phases.checked || Date.now()) - report.startedAt)}`,
  );
  lines.push(
    `system: private Kafka, Postgres, Redis; ${options.apis} API process(es); ${options.consumers} consumer(s), ` +
      `${options.scaleTo} while scaled; ${options.partitions} partitions per topic; ${options.clients} clients, ` +
      `${options.counters} counters, ${options.actors} actors`,
  );

  const faults = report.episodes.flatMap((e) => e.faults.map((f) => ({ e, f })));
  lines.push('', `faults injected: ${faults.length} in ${report.episodes.length} episode(s)`);
  for (const { e, f } of faults) {
    const ready =
      e.readyAt === undefined ? 'never ready again' : `ready ${((e.readyAt - f.healedAt) / 1000).toFixed(1)} s after`;
    lines.push(
      `  ${at(f.injectedAt)}  ${new Date(f.injectedAt).toISOString()}  #${e.index + 1} ${f.kind.padEnd(15)} ${f.detail}; ${ready}` +
        (f.failed ? `  [${f.failed}]` : ''),
    );
  }
  lines.push(
    `  by kind: ${Object.entries(report.faultCounts)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}`,
  );

  const requests = Object.values(load.stats.requests).reduce((a, b) => a + b, 0);
  lines.push('', 'load:');
  lines.push(
    `  writes: ${Object.entries(load.stats.writes)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}; requests ${requests} (reads ${load.stats.requests.read})`,
  );
  lines.push(
    `  keyless counter writes (positive deltas, no key): increment ${load.stats.keyless.increment}, increment-batch ` +
      `${load.stats.keyless['increment-batch']}; outcome-unknown answers ${load.stats.outcomeUnknown} (retried with ` +
      `the keys they gave); ambiguous (no answer, not retried): ${load.ambiguous.writes} write(s), ` +
      `${load.ambiguous.items} increment(s), deltas summing to ${load.ambiguous.sum}`,
  );
  lines.push(
    `  acknowledged events: ${load.acknowledged.counters} counter increments, ${load.acknowledged.activities} activities ` +
      `(by mode: ${sorted(load.stats.modes).join(', ')}; ${load.stats.duplicates} answered as duplicates of an earlier attempt)`,
  );
  const statuses = load.stats.statuses;
  lines.push(
    `  rejected: 503 ×${statuses.get(503) ?? 0}, 429 ×${statuses.get(429) ?? 0}, 409 ×${statuses.get(409) ?? 0}, ` +
      `no answer ×${statuses.get(0) ?? 0}; batch items in flight ×${load.stats.itemsInFlight}`,
  );
  lines.push(`  all write answers: ${sorted(statuses).join(', ')}; reads: ${sorted(load.stats.reads).join(', ')}`);
  lines.push(
    `  writes retried until acknowledged: ${load.stats.retriedWrites} (most requests for one write: ${load.stats.maxAttempts}); ` +
      `unacknowledged at the end: ${load.unacknowledged}`,
  );
  const probes = load.stats.probes;
  lines.push(
    `  view probes: ${probes.counters} counter(s), ${probes.checks} reads right after an acknowledged write: ` +
      `${probes.equal} equal, ${probes.differedInFaults} differed during Redis/Postgres faults (allowed; served - ` +
      `acknowledged from ${probes.maxUnder} to ${probes.maxOver}), ${probes.differed} differed otherwise; ` +
      `${probes.unavailable} GET(s) not answered 200, ${probes.unread} check(s) without a read`,
  );
  const killed = report.episodes.flatMap((e) => e.faults).filter((f) => f.kind === 'api-kill');
  if (killed.length > 0) {
    lines.push(
      `  api-kills: ${killed.length}, with ${killed.map((f) => f.keylessInFlight ?? 0).join(', ')} keyless write(s) in flight`,
    );
  }
  lines.push(
    `  max lag: ${lag.maxMessages} messages${lag.maxMessagesAt ? ` (at ${at(lag.maxMessagesAt)})` : ''}, ` +
      `${lag.maxSeconds.toFixed(1)} s (oldest unapplied event; ${lag.samples} samples of the API's lag metrics)`,
  );
  if (phases.drained > 0) {
    lines.push(
      `  drain ${((phases.drained - phases.faultsTo) / 1000).toFixed(1)} s; lag zero ${((phases.lagZero - phases.drained) / 1000).toFixed(1)} s after`,
    );
  }

  if (oracle) {
    lines.push('', 'oracle:');
    const { counters, ledger, reads } = oracle;
    lines.push(
      `  counters: ${counters.withinBounds}/${counters.expected} within [acknowledged, acknowledged + ambiguous] in ` +
        `Postgres, ${counters.equal}/${counters.expected} equal to acknowledged + the ambiguous writes in the ledger ` +
        `(${counters.postgresRows} rows)`,
    );
    lines.push(
      `  ledger: ${ledger.rows} ids for ${ledger.acknowledged} acknowledged increments; missing ${ledger.missing}, ` +
        `ambiguous writes applied ${ledger.ambiguous} (of ${load.ambiguous.items}), neither acknowledged nor ambiguous ` +
        `${ledger.unknown}; ${ledger.writeThrough} written through`,
    );
    const converged =
      reads.convergedAfterMs === undefined ? 'never' : `after ${(reads.convergedAfterMs / 1000).toFixed(1)} s`;
    lines.push(
      `  GET == Postgres: ${reads.equal}/${reads.checked} reads (every counter through ${reads.apis} API process(es)); ` +
        `${reads.firstPassEqual} at the first pass, all ${converged}; ${reads.outOfBounds} outside the bounds`,
    );
    lines.push(
      `  activities: ${oracle.activities.rows} rows for ${oracle.activities.acknowledged} acknowledged; missing ` +
        `${oracle.activities.missing}, never acknowledged ${oracle.activities.unknown}, unlike sent ${oracle.activities.mismatched}`,
    );
    lines.push(`  dead letters: ${oracle.deadLetters}`);
  }
  if (report.unexpectedExits.length > 0)
    lines.push(`  processes that exited by themselves: ${report.unexpectedExits.length}`);

  lines.push('');
  if (report.error) {
    lines.push(`result: ERROR (the run could not be completed)\n${report.error}`);
  } else if (report.violations.length > 0) {
    lines.push(`result: FAIL, ${report.violations.length} violation(s):`);
    for (const v of report.violations) lines.push(`  - ${v}`);
  } else {
    lines.push('result: PASS (0 violations)');
  }
  for (const v of report.error ? report.violations : []) lines.push(`  - ${v}`);
  lines.push(`logs and report.json: ${report.logDir}`);
  return lines.join('\n');
}

/** Exit code of `npm run chaos`: 0 pass, 1 a violation, 2 the run could not be completed. */
export function exitCode(report: ChaosReport): number {
  if (report.error) return 2;
  return report.violations.length > 0 ? 1 : 0;
}
