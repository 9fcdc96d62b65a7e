import { Injectable } from '@nestjs/common';
import { Database } from '@app/db';
import { int8 } from './int8.js';
import type { Tx } from './store.types.js';

export interface PartitionHold {
  groupId: string;
  topic: string;
  partition: number;
  /** The offset stored in Postgres when the hold was taken, which belongs to an older log. */
  storedOffset: number;
  logStart: number;
  logEnd: number;
  reason: string;
  heldAt: Date;
  heldBy: string;
}

interface Row {
  group_id: string;
  topic: string;
  partition: number;
  stored_offset: string;
  log_start: string;
  log_end: string;
  reason: string;
  held_at: Date;
  held_by: string;
}

const toHold = (r: Row): PartitionHold => ({
  groupId: r.group_id,
  topic: r.topic,
  partition: r.partition,
  storedOffset: int8(r.stored_offset),
  logStart: int8(r.log_start),
  logEnd: int8(r.log_end),
  reason: r.reason,
  heldAt: r.held_at,
  heldBy: r.held_by,
});

/**
 * Every query `partition_holds` gets: partitions whose stored offset belongs to an older Kafka log than the current
 * one (a recreated topic, lost broker data). The consumer applies nothing there while a hold exists; only
 * `wb offsets rebaseline` removes it. A hold is kept in Postgres, not in a process: the new log may grow past the
 * old stored offset, after which no offset comparison can tell any more.
 */
@Injectable()
export class PartitionHoldRepository {
  constructor(private readonly database: Database) {}

  /** Records a hold; the first one of a partition stays (it names the moment the problem was found). */
  async hold(entry: Omit<PartitionHold, 'heldAt'>, t?: Tx): Promise<void> {
    await (t ?? this.database.db).none(
      `INSERT INTO partition_holds (group_id, topic, partition, stored_offset, log_start, log_end, reason, held_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (group_id, topic, partition) DO NOTHING`,
      [
        entry.groupId,
        entry.topic,
        entry.partition,
        String(entry.storedOffset),
        String(entry.logStart),
        String(entry.logEnd),
        entry.reason,
        entry.heldBy,
      ],
    );
  }

  /** The group's holds, all or of one topic. */
  async list(groupId: string, topic?: string, t?: Tx): Promise<PartitionHold[]> {
    const rows = await (t ?? this.database.db).any<Row>(
      `SELECT group_id, topic, partition, stored_offset, log_start, log_end, reason, held_at, held_by
         FROM partition_holds WHERE group_id = $1 AND ($2::text IS NULL OR topic = $2) ORDER BY topic, partition`,
      [groupId, topic ?? null],
    );
    return rows.map(toHold);
  }

  /** Removes a hold inside the caller's transaction (the one that re-baselines the stored offset). */
  async release(t: Tx, groupId: string, topic: string, partition: number): Promise<void> {
    await t.none('DELETE FROM partition_holds WHERE group_id = $1 AND topic = $2 AND partition = $3', [
      groupId,
      topic,
      partition,
    ]);
  }
}
