import { Injectable } from '@nestjs/common';
import { type PipelineReply, RedisClient } from '@app/redis';
import type { StoredResponse } from './idempotency.types.js';

/** A key's record in Redis: `p` while the first request runs, `d` with its response once it answered. */
type Record = { s: 'p'; h: string } | { s: 'd'; h: string; r: StoredResponse };

/**
 * Every Redis command the idempotency records get. One key per (client, idempotency key):
 * `idem:<client>:<key>`, a JSON record with the request's fingerprint.
 */
@Injectable()
export class IdempotencyRepository {
  constructor(private readonly client: RedisClient) {}

  private key(clientId: string, key: string): string {
    return `idem:${clientId}:${key}`;
  }

  /**
   * Claims each key that is free (SET NX with the in-flight lease) and returns, per key, either `true`
   * (claimed) or the record that holds it. One round trip for a whole batch: one pipeline on a single server,
   * one pipeline per key, all sent at once, on a Redis Cluster (the keys of a batch hash to many slots).
   */
  async claim(
    clientId: string,
    entries: { key: string; fingerprint: string }[],
    lockMs: number,
  ): Promise<(true | Record | null)[]> {
    const replies = await this.client.pipelineGroups(
      entries.map((e) => (pipeline) => {
        const key = this.key(clientId, e.key);
        pipeline.set(key, JSON.stringify({ s: 'p', h: e.fingerprint } satisfies Record), 'PX', lockMs, 'NX');
        pipeline.get(key);
      }),
    );
    return replies.map(([[setError, set] = [null, null], [getError, current] = [null, null]]) => {
      if (setError) throw setError;
      if (set === 'OK') return true;
      if (getError) throw getError;
      return typeof current === 'string' ? (JSON.parse(current) as Record) : null;
    });
  }

  async complete(
    clientId: string,
    entries: { key: string; fingerprint: string; response: StoredResponse }[],
    ttlSeconds: number,
  ): Promise<void> {
    const replies = await this.client.pipelineGroups(
      entries.map((e) => (pipeline) => {
        const record: Record = { s: 'd', h: e.fingerprint, r: e.response };
        pipeline.set(this.key(clientId, e.key), JSON.stringify(record), 'EX', ttlSeconds);
      }),
    );
    throwFirstError(replies);
  }

  /** One DEL per key rather than one multi-key DEL, which a Redis Cluster refuses across slots (CROSSSLOT). */
  async release(clientId: string, keys: string[]): Promise<void> {
    const replies = await this.client.pipelineGroups(
      keys.map((k) => (pipeline) => {
        pipeline.del(this.key(clientId, k));
      }),
    );
    throwFirstError(replies);
  }
}

function throwFirstError(replies: PipelineReply[][]): void {
  const error = replies.flat().find(([e]) => e !== null)?.[0];
  if (error) throw error;
}

export type { Record as IdempotencyRecord };
