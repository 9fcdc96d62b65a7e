import { Injectable } from '@nestjs/common';
import { Database } from '@app/db';
import { int8 } from './int8.js';
import type { Tx } from './store.types.js';

/**
 * Every query `consumer_offsets` gets: per (group, topic, partition) the next offset to apply. Written in the
 * transaction that applies the messages below it, so it is the truth about progress: a message below it was
 * applied, whatever Kafka's committed offset says.
 */
const ADVANCE = `
  INSERT INTO consumer_offsets AS o (group_id, topic, partition, next_offset)
  VALUES ($1, $2, $3, $4)
  ON CONFLICT (group_id, topic, partition) DO UPDATE
    SET next_offset = GREATEST(o.next_offset, EXCLUDED.next_offset), updated_at = now()`;

/**
 * Moves a stored offset forward past events that can never be applied (deleted by Kafka's retention before the
 * consumer read them), outside an applying transaction. Returns the offset it replaced; no row when it did not
 * move, so of two processes that see the same gap only one reports it.
 */
const SKIP_TO = `
  WITH old AS (
    SELECT next_offset FROM consumer_offsets WHERE group_id = $1 AND topic = $2 AND partition = $3 FOR UPDATE
  )
  UPDATE consumer_offsets o SET next_offset = $4, updated_at = now()
    FROM old
   WHERE o.group_id = $1 AND o.topic = $2 AND o.partition = $3 AND old.next_offset < $4
  RETURNING old.next_offset`;

@Injectable()
export class OffsetRepository {
  constructor(private readonly database: Database) {}

  /** The next offset to apply, or undefined when this partition was never applied by the group. */
  async next(groupId: string, topic: string, partition: number, t?: Tx): Promise<number | undefined> {
    const row = await (t ?? this.database.db).oneOrNone<{ next_offset: string }>(
      'SELECT next_offset FROM consumer_offsets WHERE group_id = $1 AND topic = $2 AND partition = $3',
      [groupId, topic, partition],
    );
    return row === null ? undefined : int8(row.next_offset);
  }

  /**
   * The next offset to apply and whether the partition is held (`partition_holds`), in one round trip: what the
   * consumer checks before each batch.
   */
  async position(
    groupId: string,
    topic: string,
    partition: number,
  ): Promise<{ next: number | undefined; held: boolean }> {
    const row = await this.database.db.one<{ next_offset: string | null; held: boolean }>(
      `SELECT (SELECT next_offset FROM consumer_offsets WHERE group_id = $1 AND topic = $2 AND partition = $3),
              EXISTS (SELECT 1 FROM partition_holds WHERE group_id = $1 AND topic = $2 AND partition = $3) AS held`,
      [groupId, topic, partition],
    );
    return { next: row.next_offset === null ? undefined : int8(row.next_offset), held: row.held };
  }

  /**
   * Sets the next offset of a partition whose stored offset belongs to an older log (`wb offsets rebaseline`), back
   * or forward, inside the caller's transaction, which also releases the hold. Returns the offset it replaced.
   */
  async rebaseline(
    t: Tx,
    groupId: string,
    topic: string,
    partition: number,
    nextOffset: number,
  ): Promise<number | undefined> {
    const row = await t.oneOrNone<{ next_offset: string }>(
      `WITH old AS (
         SELECT next_offset FROM consumer_offsets WHERE group_id = $1 AND topic = $2 AND partition = $3 FOR UPDATE
       )
       UPDATE consumer_offsets o SET next_offset = $4, updated_at = now() FROM old
        WHERE o.group_id = $1 AND o.topic = $2 AND o.partition = $3
       RETURNING old.next_offset`,
      [groupId, topic, partition, nextOffset],
    );
    return row === null ? undefined : int8(row.next_offset);
  }

  /** Moves the partition's next offset forward (never back) inside the caller's transaction. */
  async advance(t: Tx, groupId: string, topic: string, partition: number, nextOffset: number): Promise<void> {
    await t.none(ADVANCE, [groupId, topic, partition, nextOffset]);
  }

  /** Moves the partition's next offset forward to `nextOffset`; returns the offset it replaced, if it moved. */
  async skipTo(groupId: string, topic: string, partition: number, nextOffset: number): Promise<number | undefined> {
    const row = await this.database.db.oneOrNone<{ next_offset: string }>(SKIP_TO, [
      groupId,
      topic,
      partition,
      nextOffset,
    ]);
    return row === null ? undefined : int8(row.next_offset);
  }

  /** Every group's stored offsets of `topic` (for `wb topics`, which creates topics). */
  async ofTopic(topic: string): Promise<{ groupId: string; partition: number; nextOffset: number }[]> {
    const rows = await this.database.db.any<{ group_id: string; partition: number; next_offset: string }>(
      'SELECT group_id, partition, next_offset FROM consumer_offsets WHERE topic = $1 ORDER BY group_id, partition',
      [topic],
    );
    return rows.map((r) => ({ groupId: r.group_id, partition: r.partition, nextOffset: int8(r.next_offset) }));
  }

  async all(groupId: string): Promise<{ topic: string; partition: number; nextOffset: number }[]> {
    const rows = await this.database.db.any<{ topic: string; partition: number; next_offset: string }>(
      'SELECT topic, partition, next_offset FROM consumer_offsets WHERE group_id = $1 ORDER BY topic, partition',
      [groupId],
    );
    return rows.map((r) => ({ topic: r.topic, partition: r.partition, nextOffset: int8(r.next_offset) }));
  }
}
