import { Injectable } from '@nestjs/common';
import { Database } from '@app/db';
import { bound } from './bound.js';
import { int8 } from './int8.js';
import type { ApplyCountersResult, ApplySource, CounterIncrement, CounterState, Tx } from './store.types.js';

/**
 * A counter's version is the time of its last change in microseconds (made strictly increasing by
 * GREATEST(version + 1, ...)), not a count: so it keeps growing across a restore of Postgres from a backup,
 * and the Redis view, which only ever moves to a newer version, follows the restored rows' next changes
 * instead of holding on to the pre-restore value. clock_timestamp() is read while the row is locked, so of
 * two transactions on one counter the later writer gets the later version.
 */
const VERSION_NOW = '(extract(epoch FROM clock_timestamp()) * 1000000)::bigint';

/**
 * Every query the `counters` table and the dedupe ledger (`processed_events`) get.
 *
 * One statement applies a whole batch: the event ids go into the ledger (ON CONFLICT DO NOTHING), only the
 * ids that were new count, their deltas are summed per counter, and the sums are upserted in counter-name
 * order. Arrays travel through `unnest`, so a batch of any size is three bind parameters (no 65,535 limit);
 * ids and names are sorted so two concurrent batches lock rows in the same order and cannot deadlock.
 */
const APPLY_INCREMENTS = `
  WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) AS t(event_id, name, delta)
  ), fresh AS (
    INSERT INTO processed_events (event_id, source)
    SELECT event_id, $4::text FROM input ORDER BY event_id
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
  ), sums AS (
    SELECT input.name, sum(input.delta)::bigint AS delta
      FROM input JOIN fresh USING (event_id)
     GROUP BY input.name
  ), upserted AS (
    INSERT INTO counters AS c (name, value, version)
    SELECT name, delta, ${VERSION_NOW} FROM sums ORDER BY name
    ON CONFLICT (name) DO UPDATE
      SET value = c.value + EXCLUDED.value,
          version = GREATEST(c.version + 1, ${VERSION_NOW}),
          updated_at = now()
    RETURNING c.name, c.value, c.version
  )
  SELECT 'counter' AS kind, name AS id, value, version FROM upserted
  UNION ALL
  SELECT 'applied', event_id, NULL, NULL FROM fresh`;

/** The current rows of several counters (those never written are absent). */
const READ_MANY = `
  SELECT name, value, version FROM counters WHERE name = ANY($1::text[]) ORDER BY name`;

/** One round trip for a cache miss: the row, and which of the ids the cache still holds as pending are applied. */
const READ_WITH_APPLIED = `
  SELECT c.value, c.version,
         ARRAY(SELECT event_id FROM processed_events WHERE event_id = ANY($2::text[])) AS applied
    FROM (SELECT 1) AS one
    LEFT JOIN counters c ON c.name = $1`;

@Injectable()
export class CounterRepository {
  constructor(private readonly database: Database) {}

  /**
   * Applies increments exactly once each, inside the caller's transaction. An id seen twice in `increments`
   * counts once (the first occurrence wins).
   */
  async applyIncrements(t: Tx, increments: CounterIncrement[], source: ApplySource): Promise<ApplyCountersResult> {
    const unique = new Map<string, CounterIncrement>();
    for (const inc of increments) if (!unique.has(inc.eventId)) unique.set(inc.eventId, inc);
    if (unique.size === 0) return { changed: [], appliedIds: [], duplicateIds: [] };
    const rows = [...unique.values()];
    const result = await t.any<{ kind: string; id: string; value: string | null; version: string | null }>(
      bound(APPLY_INCREMENTS, [
        rows.map((r) => r.eventId),
        rows.map((r) => r.name),
        rows.map((r) => String(r.by)),
        source,
      ]),
    );
    const changed: CounterState[] = [];
    const applied = new Set<string>();
    for (const row of result) {
      if (row.kind === 'counter')
        changed.push({ name: row.id, value: int8(row.value ?? 0), version: int8(row.version ?? 0) });
      else applied.add(row.id);
    }
    return {
      changed,
      appliedIds: [...applied],
      duplicateIds: rows.map((r) => r.eventId).filter((id) => !applied.has(id)),
    };
  }

  /** The counter's (value, version), (0, 0) when it was never written, and which of `eventIds` are applied. */
  async readWithApplied(name: string, eventIds: string[]): Promise<{ state: CounterState; appliedIds: string[] }> {
    const row = await this.database.db.one<{ value: string | null; version: string | null; applied: string[] }>(
      READ_WITH_APPLIED,
      [name, eventIds],
    );
    return {
      state: { name, value: int8(row.value ?? 0), version: int8(row.version ?? 0) },
      appliedIds: row.applied,
    };
  }

  /** The (value, version) of each of `names` that exists. */
  async readMany(names: string[]): Promise<CounterState[]> {
    if (names.length === 0) return [];
    const rows = await this.database.db.any<{ name: string; value: string; version: string }>(READ_MANY, [names]);
    return rows.map((r) => ({ name: r.name, value: int8(r.value), version: int8(r.version) }));
  }

  /** Counter names: all of them, or a random sample of `sample`. */
  async names(sample?: number): Promise<string[]> {
    const rows =
      sample === undefined
        ? await this.database.db.any<{ name: string }>('SELECT name FROM counters ORDER BY name')
        : await this.database.db.any<{ name: string }>('SELECT name FROM counters ORDER BY random() LIMIT $1', [
            sample,
          ]);
    return rows.map((r) => r.name);
  }

  async read(name: string): Promise<CounterState> {
    return (await this.readWithApplied(name, [])).state;
  }
}
