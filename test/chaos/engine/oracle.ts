import { counterFingerprint } from '@app/events';
import { readTopic, waitFor } from '@app/testing';
import { API_MADE_KEY, type AmbiguousWrite, type ChaosLoad, parseEventId } from './load.js';
import { type ChaosSystem, TENANTS } from './system.js';

export interface OracleResult {
  violations: string[];
  /**
   * `expected`: counters written; `withinBounds`: acknowledged sum <= Postgres <= that plus the ambiguous deltas;
   * `equal`: Postgres == the acknowledged sum plus the deltas of the ambiguous writes the ledger holds.
   */
  counters: { expected: number; withinBounds: number; equal: number; postgresRows: number };
  /** `ambiguous`: ledger ids that are ambiguous writes (applied though unanswered); `unknown`: ids that are not. */
  ledger: {
    rows: number;
    acknowledged: number;
    missing: number;
    ambiguous: number;
    unknown: number;
    writeThrough: number;
  };
  /** GET after lag zero: how many equal to Postgres at the first pass, and how long until all were. */
  reads: {
    checked: number;
    equal: number;
    apis: number;
    firstPassEqual: number;
    convergedAfterMs: number | undefined;
    outOfBounds: number;
  };
  activities: { acknowledged: number; rows: number; missing: number; unknown: number; mismatched: number };
  deadLetters: number;
}

/** Keys sorted at every level: jsonb does not keep the order the client sent. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}

const MAX_LISTED = 15;

function listed(items: string[]): string {
  return items.length <= MAX_LISTED
    ? items.join(', ')
    : `${items.slice(0, MAX_LISTED).join(', ')} and ${items.length - MAX_LISTED} more`;
}

/**
 * The oracle, checked once writes stopped and the consumer group's lag is zero:
 * - G1/G2: the dedupe ledger holds every acknowledged counter event id, and no other id but at most one per
 *   ambiguous keyless write (its client, counter and delta, under a key the API made); every counter's Postgres value
 *   lies between the sum of its acknowledged deltas and that plus its ambiguous ones, and is exactly the acknowledged
 *   sum plus the deltas of the ambiguous writes the ledger holds;
 * - G4: GET of every counter, through every API process, serves the Postgres value (once the view sweep has taken
 *   out what ambiguous writes left in the view);
 * - G3: no probe read differed from what its client had acknowledged, outside Redis and Postgres faults;
 * - every acknowledged activity is in Postgres once, as sent, and no other;
 * - nothing was dead-lettered (every write of the load is valid);
 * - no write was left unacknowledged, and the load saw no answer a correct API does not give.
 */
export async function checkOracle(system: ChaosSystem, load: ChaosLoad): Promise<OracleResult> {
  const violations: string[] = [...load.violations];
  const { stack } = system;

  if (load.unacknowledged.length > 0) {
    violations.push(
      `${load.unacknowledged.length} write(s) still unacknowledged after the drain: ` +
        listed(load.unacknowledged.map((w) => w.eventId ?? `(keyless) ${w.type === 'counter' ? w.name : ''}`)),
    );
  }
  const unacknowledgedIds = new Set(load.unacknowledged.map((w) => w.eventId));

  // The ledger: the acknowledged counter event ids, and at most those of the ambiguous writes.
  const ledger = await stack.query<{ event_id: string; source: string }>(
    'SELECT event_id, source FROM processed_events',
  );
  const ledgerIds = new Set(ledger.map((r) => r.event_id));
  const missing = [...load.counterAcks.keys()].filter((id) => !ledgerIds.has(id));
  const { applied: appliedAmbiguous, unexplained: unknown } = matchAmbiguous(
    [...ledgerIds].filter((id) => !load.counterAcks.has(id)),
    load.ambiguous,
  );
  if (missing.length > 0) violations.push(`G1: acknowledged counter events not in the ledger: ${listed(missing)}`);
  if (missing.length > 0) violations.push(`  where they are in Kafka: ${await locate(system, load, missing)}`);
  if (unknown.length > 0) {
    const described = unknown.map((id) => (unacknowledgedIds.has(id) ? `${id} (sent, never acknowledged)` : id));
    violations.push(`ledger holds event ids never acknowledged nor left ambiguous: ${listed(described)}`);
  }

  // G2: per counter, acknowledged <= Postgres <= acknowledged + ambiguous (deltas of keyless writes are positive),
  // and exactly the acknowledged sum plus the ambiguous writes the ledger holds.
  const acknowledged = load.expectedCounters();
  const ambiguous = load.ambiguousCounters();
  const appliedAmbiguousSums = new Map<string, number>();
  for (const { write } of appliedAmbiguous) {
    appliedAmbiguousSums.set(write.name, (appliedAmbiguousSums.get(write.name) ?? 0) + write.by);
  }
  const names = [...new Set([...acknowledged.keys(), ...ambiguous.keys()])].sort();
  const rows = await stack.query<{ name: string; value: string }>('SELECT name, value FROM counters');
  const postgres = new Map(rows.map((r) => [r.name, Number(r.value)]));
  const outOfBounds: string[] = [];
  const wrong: string[] = [];
  for (const name of names) {
    const low = acknowledged.get(name) ?? 0;
    const high = low + (ambiguous.get(name) ?? 0);
    const value = postgres.get(name) ?? 0;
    if (value < low || value > high) {
      outOfBounds.push(`${name}: Postgres ${postgres.get(name) ?? 'no row'}, acknowledged ${low}, at most ${high}`);
    }
    const exact = low + (appliedAmbiguousSums.get(name) ?? 0);
    if (postgres.get(name) !== exact && !(exact === 0 && !postgres.has(name))) {
      wrong.push(`${name}: Postgres ${postgres.get(name) ?? 'no row'}, oracle ${exact}`);
    }
  }
  const extra = [...postgres.keys()].filter((name) => !names.includes(name));
  if (outOfBounds.length > 0) {
    violations.push(
      `G2: ${outOfBounds.length} counter(s) outside [acknowledged, acknowledged + ambiguous]: ${listed(outOfBounds)}`,
    );
  }
  if (wrong.length > 0) {
    violations.push(
      `G2: ${wrong.length} counter(s) differ from the acknowledged writes plus the ambiguous ones in the ledger: ` +
        listed(wrong),
    );
  }
  if (extra.length > 0) violations.push(`G2: counters in Postgres that no write of the load touched: ${listed(extra)}`);

  // Activities: exactly the acknowledged ones, as sent.
  const activityRows = await stack.query<{
    id: string;
    actor: string;
    verb: string;
    object: string;
    occurred_at: Date;
    data: unknown;
  }>('SELECT id, actor, verb, object, occurred_at, data FROM activities');
  const activityIds = new Set(activityRows.map((r) => r.id));
  const missingActivities = [...load.activityAcks.keys()].filter((id) => !activityIds.has(id));
  const unknownActivities = activityRows.map((r) => r.id).filter((id) => !load.activityAcks.has(id));
  const mismatched: string[] = [];
  for (const row of activityRows) {
    const sent = load.activityAcks.get(row.id);
    if (!sent) continue;
    const differences = [
      row.actor !== sent.actor && 'actor',
      row.verb !== sent.verb && 'verb',
      row.object !== sent.object && 'object',
      sent.occurredAt !== undefined && row.occurred_at.toISOString() !== sent.occurredAt && 'occurredAt',
      canonical(row.data ?? null) !== canonical(sent.data ?? null) && 'data',
    ].filter(Boolean);
    if (differences.length > 0) mismatched.push(`${row.id} (${differences.join(', ')})`);
  }
  if (missingActivities.length > 0) {
    violations.push(`G1: acknowledged activities not in Postgres: ${listed(missingActivities)}`);
    violations.push(`  where they are in Kafka: ${await locate(system, load, missingActivities)}`);
  }
  if (unknownActivities.length > 0) {
    violations.push(`activities in Postgres never acknowledged: ${listed(unknownActivities)}`);
  }
  if (mismatched.length > 0) violations.push(`activities stored unlike sent: ${listed(mismatched)}`);

  // G4: the served value converges on Postgres, through every API process. Not at once: a keyless write cut between
  // Redis and Kafka by an api-kill leaves a delta in the view that no event will ever apply, and the view sweep takes
  // it out only once the group has applied its partition past it, less its margin (two Kafka request timeouts and the
  // produce timeout, 61.5 s here), and a sweep (every 5 s) has run.
  let lastDiffs: string[] = [];
  let equalReads = 0;
  let firstPassEqual: number | undefined;
  const checkedFrom = Date.now();
  let convergedAfterMs: number | undefined;
  // While it converges, every read must lie between what was acknowledged and that plus the ambiguous writes: an
  // orphan is an ambiguous delta, so only a delta counted twice (or a lost one) takes a read out of those bounds.
  const outOfBoundReads = new Map<string, string>();
  const read = async (port: number, name: string) => {
    const response = await fetch(`http://127.0.0.1:${port}/v1/counters/${name}`, {
      headers: { 'x-api-key': TENANTS[0].key },
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await response.json()) as { value?: number };
    return response.status === 200 ? body.value : `status ${response.status}`;
  };
  try {
    await waitFor(
      async () => {
        const diffs: string[] = [];
        equalReads = 0;
        for (const api of system.apis) {
          for (const name of names) {
            const served = await read(api.port, name);
            const stored = postgres.get(name) ?? 0;
            if (served === stored) {
              equalReads += 1;
            } else {
              const low = acknowledged.get(name) ?? 0;
              const high = low + (ambiguous.get(name) ?? 0);
              const bound = typeof served === 'number' && served >= low && served <= high ? 'within' : 'outside';
              const diff = `${api.name} ${name}: GET ${served}, Postgres ${stored} (${bound} [${low}, ${high}])`;
              diffs.push(diff);
              if (bound === 'outside' && !outOfBoundReads.has(`${api.name} ${name}`)) {
                outOfBoundReads.set(
                  `${api.name} ${name}`,
                  `${diff} at +${((Date.now() - checkedFrom) / 1000).toFixed(0)} s`,
                );
              }
            }
          }
        }
        firstPassEqual ??= equalReads;
        lastDiffs = diffs;
        return diffs.length === 0;
      },
      { timeoutMs: 120_000, intervalMs: 2000, description: 'GET == Postgres for every counter' },
    );
    convergedAfterMs = Date.now() - checkedFrom;
  } catch {
    violations.push(`G4: served values differ from Postgres 120 s after lag zero: ${listed(lastDiffs)}`);
    violations.push(`  the Redis view of those counters: ${await describeView(system, lastDiffs)}`);
  }

  if (outOfBoundReads.size > 0) {
    violations.push(
      `G4: reads after lag zero outside [acknowledged, acknowledged + ambiguous]: ${listed([...outOfBoundReads.values()])}`,
    );
  }

  // Read-your-writes while the faults happened: the probes' counts (their violations are the load's).
  const { probes } = load.stats;
  if (probes.differed > 0) {
    violations.push(
      `G3: ${probes.differed} probe read(s) differed from the acknowledged writes outside Redis and Postgres faults ` +
        '(the first ones above)',
    );
  }

  // Nothing of this load is invalid: any dead letter is a wrongly classified failure.
  let deadLetters = 0;
  for (const topic of system.topics) {
    const letters = await readTopic(stack.kafka, `${topic}.dlq`);
    deadLetters += letters.length;
    if (letters.length > 0) {
      const reasons = letters.map(
        (l) => `${l.headers['dlq-error-class'] ?? '?'}: ${(l.headers['dlq-error-message'] ?? '').slice(0, 120)}`,
      );
      violations.push(`G5: ${letters.length} dead letter(s) in ${topic}.dlq: ${listed([...new Set(reasons)])}`);
    }
  }

  return {
    violations,
    counters: {
      expected: names.length,
      withinBounds: names.length - outOfBounds.length,
      equal: names.length - wrong.length,
      postgresRows: rows.length,
    },
    ledger: {
      rows: ledger.length,
      acknowledged: load.counterAcks.size,
      missing: missing.length,
      ambiguous: appliedAmbiguous.length,
      unknown: unknown.length,
      writeThrough: ledger.filter((r) => r.source === 'write-through').length,
    },
    reads: {
      checked: names.length * system.apis.length,
      equal: equalReads,
      apis: system.apis.length,
      firstPassEqual: firstPassEqual ?? 0,
      convergedAfterMs,
      outOfBounds: outOfBoundReads.size,
    },
    activities: {
      acknowledged: load.activityAcks.size,
      rows: activityRows.length,
      missing: missingActivities.length,
      unknown: unknownActivities.length,
      mismatched: mismatched.length,
    },
    deadLetters,
  };
}

/**
 * Ledger ids that no acknowledged write has, matched to the ambiguous writes. Such an id must be
 * `<client>:<key the API made>#<fingerprint>`, and the ids of one made UUID (`<uuid>`, `<uuid>.<n>`: one request's)
 * must all be writes of ONE ambiguous request of that client: each id the item at its place (n) with that counter and
 * delta, each item explaining at most one id. So one write applied twice (two UUIDs for one request), or a write
 * applied from an attempt that was answered "nothing applied", is unexplained rather than matched to some other
 * write of the same counter and delta. The UUIDs with the most ids are matched first, each to the first request that
 * explains all of them.
 */
function matchAmbiguous(
  ids: string[],
  writes: AmbiguousWrite[],
): { applied: { id: string; write: AmbiguousWrite }[]; unexplained: string[] } {
  const requests = new Map<number, AmbiguousWrite[]>();
  for (const write of writes) requests.set(write.request, [...(requests.get(write.request) ?? []), write]);
  const unexplained: string[] = [];
  const byUuid = new Map<string, { id: string; client: string; print: string; place: number }[]>();
  for (const id of ids) {
    const parsed = parseEventId(id);
    if (!parsed || !API_MADE_KEY.test(parsed.key)) {
      unexplained.push(id);
      continue;
    }
    const [uuid = '', n] = parsed.key.split('.');
    const group = `${parsed.client}:${uuid}`;
    byUuid.set(group, [
      ...(byUuid.get(group) ?? []),
      { id, client: parsed.client, print: parsed.print, place: n === undefined ? 0 : Number(n) },
    ]);
  }
  const explains = (write: AmbiguousWrite, id: { client: string; print: string; place: number }) =>
    write.client === id.client &&
    counterFingerprint(write.name, write.by) === id.print &&
    (write.index === undefined || write.index === id.place);
  const applied: { id: string; write: AmbiguousWrite }[] = [];
  const used = new Set<number>();
  for (const group of [...byUuid.values()].sort((a, b) => b.length - a.length)) {
    let matched: { id: string; write: AmbiguousWrite }[] | undefined;
    for (const [request, items] of requests) {
      if (used.has(request)) continue;
      const free = [...items];
      const pairs: { id: string; write: AmbiguousWrite }[] = [];
      for (const id of group) {
        const at = free.findIndex((write) => explains(write, id));
        if (at < 0) break;
        pairs.push({ id: id.id, write: free.splice(at, 1)[0] as AmbiguousWrite });
      }
      if (pairs.length === group.length) {
        used.add(request);
        matched = pairs;
        break;
      }
    }
    if (matched) applied.push(...matched);
    else unexplained.push(...group.map((g) => g.id));
  }
  return { applied, unexplained };
}

/**
 * For the report of a G1 violation: where the first missing events are in the change-event topics (partition and
 * offset, and the offset stored in Postgres for that partition), or that Kafka does not have them: a consumer that
 * skipped them, or an API that acknowledged what reached neither Kafka nor Postgres.
 */
async function locate(system: ChaosSystem, load: ChaosLoad, ids: string[]): Promise<string> {
  const wanted = ids.slice(0, MAX_LISTED);
  const { stack } = system;
  const found = new Map<string, string>();
  try {
    const stored = new Map(
      (
        await stack.query<{ topic: string; partition: number; next_offset: string }>(
          'SELECT topic, partition, next_offset FROM consumer_offsets WHERE group_id = $1',
          [stack.groupId],
        )
      ).map((r) => [`${r.topic}/${r.partition}`, r.next_offset]),
    );
    for (const topic of system.topics) {
      for (const m of await readTopic(stack.kafka, topic)) {
        const value = m.value?.toString('utf8') ?? '';
        for (const id of wanted) {
          if (!found.has(id) && value.includes(JSON.stringify(id))) {
            found.set(
              id,
              `${topic}/${m.partition}@${m.offset} (stored ${stored.get(`${topic}/${m.partition}`) ?? '-'})`,
            );
          }
        }
      }
    }
  } catch (error) {
    return `(could not read: ${(error as Error).message})`;
  }
  return wanted
    .map((id) => {
      const how = load.ackedHow.get(id);
      const acked = how ? ` (acknowledged ${how.mode} at ${new Date(how.at).toISOString()})` : '';
      return `${id}${acked}: ${found.get(id) ?? 'not in Kafka'}`;
    })
    .join(', ');
}

/**
 * For the report of a G4 violation: per drifted counter, its base and how many pending entries (and their sum) are
 * for events the ledger already holds: applied, yet still counted on top of a base that includes them.
 */
async function describeView(system: ChaosSystem, diffs: string[]): Promise<string> {
  const names = [...new Set(diffs.map((d) => /^\S+ (\S+):/.exec(d)?.[1]).filter((n): n is string => n !== undefined))];
  const { stack } = system;
  const parts: string[] = [];
  try {
    for (const name of names.slice(0, 10)) {
      const [base, pending] = await Promise.all([
        stack.redis.hgetall(`${stack.keyPrefix}{c:${name}}:base`),
        stack.redis.hgetall(`${stack.keyPrefix}{c:${name}}:pending`),
      ]);
      const ids = Object.keys(pending).filter((id) => id !== ' sum');
      const applied = await stack.query<{ event_id: string }>(
        'SELECT event_id FROM processed_events WHERE event_id = ANY($1)',
        [ids],
      );
      const appliedSum = applied.reduce((sum, r) => sum + Number((pending[r.event_id] ?? '0').split(':')[0]), 0);
      parts.push(
        `${name}: base ${base['v'] ?? '-'}, pending ${ids.length} (sum ${pending[' sum'] ?? 0}), of which ` +
          `${applied.length} already applied (sum ${appliedSum})`,
      );
    }
  } catch (error) {
    parts.push(`(could not read: ${(error as Error).message})`);
  }
  return parts.join('; ');
}
