import { Injectable } from '@nestjs/common';
import { Database } from '@app/db';
import { int8 } from './int8.js';

export interface ReplayRequest {
  id: number;
  topic: string;
  partition: number;
  targetOffset: number;
}

/** Every query `replay_requests` gets: the CLI asks, the consumer group's members seek and acknowledge. */
@Injectable()
export class ReplayRequestRepository {
  constructor(private readonly database: Database) {}

  async create(
    groupId: string,
    requestedBy: string,
    targets: { topic: string; partition: number; targetOffset: number }[],
  ): Promise<number[]> {
    if (targets.length === 0) return [];
    const rows = await this.database.db.any<{ id: string }>(
      `INSERT INTO replay_requests (group_id, topic, partition, target_offset, requested_by)
       SELECT $1, topic, partition, target_offset, $2
         FROM unnest($3::text[], $4::int[], $5::bigint[]) AS t(topic, partition, target_offset)
       RETURNING id`,
      [
        groupId,
        requestedBy,
        targets.map((t) => t.topic),
        targets.map((t) => t.partition),
        targets.map((t) => String(t.targetOffset)),
      ],
    );
    return rows.map((r) => int8(r.id));
  }

  async open(groupId: string): Promise<ReplayRequest[]> {
    const rows = await this.database.db.any<{ id: string; topic: string; partition: number; target_offset: string }>(
      `SELECT id, topic, partition, target_offset FROM replay_requests
        WHERE group_id = $1 AND acknowledged_at IS NULL ORDER BY id`,
      [groupId],
    );
    return rows.map((r) => ({
      id: int8(r.id),
      topic: r.topic,
      partition: r.partition,
      targetOffset: int8(r.target_offset),
    }));
  }

  async acknowledge(ids: number[], by: string): Promise<void> {
    if (ids.length === 0) return;
    await this.database.db.none(
      `UPDATE replay_requests SET acknowledged_at = now(), acknowledged_by = $2
        WHERE id = ANY($1::bigint[]) AND acknowledged_at IS NULL`,
      [ids.map(String), by],
    );
  }

  /** The requests among `ids` that no member has acknowledged yet. */
  async unacknowledged(ids: number[]): Promise<ReplayRequest[]> {
    const rows = await this.database.db.any<{ id: string; topic: string; partition: number; target_offset: string }>(
      `SELECT id, topic, partition, target_offset FROM replay_requests
        WHERE id = ANY($1::bigint[]) AND acknowledged_at IS NULL ORDER BY id`,
      [ids.map(String)],
    );
    return rows.map((r) => ({
      id: int8(r.id),
      topic: r.topic,
      partition: r.partition,
      targetOffset: int8(r.target_offset),
    }));
  }

  /** Withdraws requests nobody took, so that no member seeks later by surprise. */
  async cancel(ids: number[]): Promise<void> {
    if (ids.length === 0) return;
    await this.database.db.none(
      'DELETE FROM replay_requests WHERE id = ANY($1::bigint[]) AND acknowledged_at IS NULL',
      [ids.map(String)],
    );
  }
}
