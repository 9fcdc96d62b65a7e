import { Injectable } from '@nestjs/common';
import { Database } from '@app/db';

/**
 * Pruning of the dedupe ledger. Ids older than the retention window are deleted in small batches so that
 * pruning never holds long locks; replays older than that are made exact by `consumer_offsets`.
 */
const PRUNE = `
  DELETE FROM processed_events
   WHERE event_id IN (
     SELECT event_id FROM processed_events WHERE applied_at < now() - make_interval(secs => $1) LIMIT $2
   )`;

@Injectable()
export class LedgerRepository {
  constructor(private readonly database: Database) {}

  /** Deletes ledger rows older than `retentionSeconds`, at most `batch` per statement; returns the count. */
  async prune(retentionSeconds: number, batch = 10_000): Promise<number> {
    let total = 0;
    for (;;) {
      const result = await this.database.db.result(PRUNE, [retentionSeconds, batch]);
      total += result.rowCount;
      if (result.rowCount < batch) return total;
    }
  }

  async contains(eventIds: string[]): Promise<string[]> {
    const rows = await this.database.db.any<{ event_id: string }>(
      'SELECT event_id FROM processed_events WHERE event_id = ANY($1::text[])',
      [eventIds],
    );
    return rows.map((r) => r.event_id);
  }
}
