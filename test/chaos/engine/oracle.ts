import { readTopic, waitFor } from '@app/testing';
import type { ChaosLoad } from './load.js';
import { type ChaosSystem, TENANTS } from './system.js';

export interface OracleResult {
  violations: string[];
  counters: { expected: number; equal: number; postgresRows: number };
  ledger: { rows: number; acknowledged: number; missing: number; unknown: number; writeThrough: number };
  reads: { checked: number; equal: number; apis: number };
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
 * - G1/G2: every counter's Postgres value is the sum of the deltas of its distinct acknowledged event ids, and
 *   the dedupe ledger holds exactly the acknowledged counter event ids (none missing, none never acknowledged);
 * - G4: GET of every counter, through every API process, serves the Postgres value;
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
        listed(load.unacknowledged.map((w) => w.eventId)),
    );
  }
  const unacknowledgedIds = new Set(load.unacknowledged.map((w) => w.eventId));

  // G2: counters.
  const expected = load.expectedCounters();
  const rows = await stack.query<{ name: string; value: string }>('SELECT name, value FROM counters');
  const postgres = new Map(rows.map((r) => [r.name, Number(r.value)]));
  const wrong: string[] = [];
  for (const [name, value] of expected) {
    if (postgres.get(name) !== value)
      wrong.push(`${name}: Postgres ${postgres.get(name) ?? 'no row'}, oracle ${value}`);
  }
  const extra = [...postgres.keys()].filter((name) => !expected.has(name));
  if (wrong.length > 0) violations.push(`G2: ${wrong.length} counter(s) differ from the oracle: ${listed(wrong)}`);
  if (extra.length > 0)
    violations.push(`G2: counters in Postgres that no acknowledged write touched: ${listed(extra)}`);

  // The ledger: exactly the acknowledged counter event ids.
  const ledger = await stack.query<{ event_id: string; source: string }>(
    'SELECT event_id, source FROM processed_events',
  );
  const ledgerIds = new Set(ledger.map((r) => r.event_id));
  const missing = [...load.counterAcks.keys()].filter((id) => !ledgerIds.has(id));
  const unknown = [...ledgerIds].filter((id) => !load.counterAcks.has(id));
  if (missing.length > 0) violations.push(`G1: acknowledged counter events not in the ledger: ${listed(missing)}`);
  if (missing.length > 0) violations.push(`  where they are in Kafka: ${await locate(system, load, missing)}`);
  if (unknown.length > 0) {
    const described = unknown.map((id) => (unacknowledgedIds.has(id) ? `${id} (sent, never acknowledged)` : id));
    violations.push(`ledger holds event ids never acknowledged: ${listed(described)}`);
  }

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

  // G4: the served value converges on Postgres, through every API process.
  const names = [...expected.keys()].sort();
  let lastDiffs: string[] = [];
  let equalReads = 0;
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
            if (served === postgres.get(name)) equalReads += 1;
            else diffs.push(`${api.name} ${name}: GET ${served}, Postgres ${postgres.get(name)}`);
          }
        }
        lastDiffs = diffs;
        return diffs.length === 0;
      },
      { timeoutMs: 30_000, intervalMs: 1000, description: 'GET == Postgres for every counter' },
    );
  } catch {
    violations.push(`G4: served values differ from Postgres 30 s after lag zero: ${listed(lastDiffs)}`);
    violations.push(`  the Redis view of those counters: ${await describeView(system, lastDiffs)}`);
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
    counters: { expected: expected.size, equal: expected.size - wrong.length, postgresRows: rows.length },
    ledger: {
      rows: ledger.length,
      acknowledged: load.counterAcks.size,
      missing: missing.length,
      unknown: unknown.length,
      writeThrough: ledger.filter((r) => r.source === 'write-through').length,
    },
    reads: { checked: names.length * system.apis.length, equal: equalReads, apis: system.apis.length },
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
