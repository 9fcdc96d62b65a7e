import { Injectable } from '@nestjs/common';
import { Database } from '@app/db';
import { bound } from './bound.js';
import type { ActivityRecord, Tx } from './store.types.js';

/**
 * Every query the `activities` table gets. Activities are immutable and their id is the event id, so the
 * primary key alone makes a redelivered or replayed insert a no-op, for ever (unlike the pruned ledger).
 */
const INSERT_ACTIVITIES = `
  INSERT INTO activities (id, actor, verb, object, occurred_at, data, accepted_at)
  SELECT id, actor, verb, object, occurred_at, data::jsonb, to_timestamp(accepted_ms / 1000.0)
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::bigint[])
         AS t(id, actor, verb, object, occurred_at, data, accepted_ms)
   ORDER BY id
  ON CONFLICT (id) DO NOTHING
  RETURNING id, actor`;

/** Newest first; the cursor is the (occurred_at, id) of the last item of the previous page. */
const FEED = `
  SELECT id, actor, verb, object, occurred_at, data, accepted_at
    FROM activities
   WHERE actor = $1
     AND ($2::timestamptz IS NULL OR (occurred_at, id) < ($2::timestamptz, $3::text))
   ORDER BY occurred_at DESC, id DESC
   LIMIT $4`;

export interface FeedCursor {
  occurredAt: string;
  id: string;
}

@Injectable()
export class ActivityRepository {
  constructor(private readonly database: Database) {}

  /** Inserts the activities that are not there yet; returns the ids and actors of those inserted now. */
  async insert(t: Tx, activities: ActivityRecord[]): Promise<{ id: string; actor: string }[]> {
    if (activities.length === 0) return [];
    return t.any<{ id: string; actor: string }>(
      bound(INSERT_ACTIVITIES, [
        activities.map((a) => a.id),
        activities.map((a) => a.actor),
        activities.map((a) => a.verb),
        activities.map((a) => a.object),
        activities.map((a) => a.occurredAt),
        activities.map((a) => (a.data === null ? null : JSON.stringify(a.data))),
        activities.map((a) => String(a.acceptedAt)),
      ]),
    );
  }

  async feed(actor: string, limit: number, before?: FeedCursor): Promise<ActivityRecord[]> {
    const rows = await this.database.db.any<{
      id: string;
      actor: string;
      verb: string;
      object: string;
      occurred_at: Date;
      data: Record<string, unknown> | null;
      accepted_at: Date;
    }>(FEED, [actor, before?.occurredAt ?? null, before?.id ?? '', limit]);
    return rows.map((r) => ({
      id: r.id,
      actor: r.actor,
      verb: r.verb,
      object: r.object,
      occurredAt: r.occurred_at.toISOString(),
      data: r.data,
      acceptedAt: r.accepted_at.getTime(),
    }));
  }
}
