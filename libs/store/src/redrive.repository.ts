import { Injectable } from '@nestjs/common';
import { Database } from '@app/db';

/** A dead letter by its place on the dead-letter topic and its Kafka timestamp. */
export interface LetterRef {
  partition: number;
  offset: number;
  timestamp: number;
}

/** `partition/offset`: how `redriven` names letters. */
export const letterKey = (l: { partition: number; offset: number }): string => `${l.partition}/${l.offset}`;

/**
 * Every query `dlq_redrives` gets: which dead letters `wb dlq redrive` has already sent back. A row matches a letter
 * only with the same timestamp: a recreated dead-letter topic reuses offsets for other letters.
 */
@Injectable()
export class RedriveRepository {
  constructor(private readonly database: Database) {}

  /** The letters of `letters` already sent back, as `partition/offset` keys. */
  async redriven(dlqTopic: string, letters: LetterRef[]): Promise<Set<string>> {
    if (letters.length === 0) return new Set();
    const rows = await this.database.db.any<{ dlq_partition: number; dlq_offset: string }>(
      `SELECT r.dlq_partition, r.dlq_offset
         FROM unnest($2::int[], $3::bigint[], $4::bigint[]) AS l(dlq_partition, dlq_offset, letter_timestamp)
         JOIN dlq_redrives r USING (dlq_partition, dlq_offset, letter_timestamp)
        WHERE r.dlq_topic = $1`,
      [
        dlqTopic,
        letters.map((l) => l.partition),
        letters.map((l) => String(l.offset)),
        letters.map((l) => String(l.timestamp)),
      ],
    );
    return new Set(rows.map((r) => letterKey({ partition: r.dlq_partition, offset: Number(r.dlq_offset) })));
  }

  /** Records letters as sent back to `targetTopic` (after Kafka acknowledged them). */
  async record(dlqTopic: string, targetTopic: string, letters: LetterRef[], by: string): Promise<void> {
    if (letters.length === 0) return;
    await this.database.db.none(
      `INSERT INTO dlq_redrives AS r (dlq_topic, dlq_partition, dlq_offset, letter_timestamp, target_topic, redriven_by)
       SELECT $1, dlq_partition, dlq_offset, letter_timestamp, $2, $3
         FROM unnest($4::int[], $5::bigint[], $6::bigint[]) AS l(dlq_partition, dlq_offset, letter_timestamp)
       ON CONFLICT (dlq_topic, dlq_partition, dlq_offset) DO UPDATE
         SET letter_timestamp = EXCLUDED.letter_timestamp, target_topic = EXCLUDED.target_topic,
             redriven_at = now(), redriven_by = EXCLUDED.redriven_by`,
      [
        dlqTopic,
        targetTopic,
        by,
        letters.map((l) => l.partition),
        letters.map((l) => String(l.offset)),
        letters.map((l) => String(l.timestamp)),
      ],
    );
  }
}
