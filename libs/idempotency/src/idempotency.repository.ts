import { Injectable } from '@nestjs/common';
import { RedisClient } from '@app/redis';
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
   * (claimed) or the record that holds it. One round trip for a whole batch.
   */
  async claim(
    clientId: string,
    entries: { key: string; fingerprint: string }[],
    lockMs: number,
  ): Promise<(true | Record | null)[]> {
    const pipeline = this.client.redis.pipeline();
    for (const e of entries) {
      pipeline.set(
        this.key(clientId, e.key),
        JSON.stringify({ s: 'p', h: e.fingerprint } satisfies Record),
        'PX',
        lockMs,
        'NX',
      );
      pipeline.get(this.key(clientId, e.key));
    }
    const replies = (await pipeline.exec()) ?? [];
    return entries.map((_, i) => {
      const [setError, set] = replies[2 * i] ?? [null, null];
      const [getError, current] = replies[2 * i + 1] ?? [null, null];
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
    if (entries.length === 0) return;
    const pipeline = this.client.redis.pipeline();
    for (const e of entries) {
      const record: Record = { s: 'd', h: e.fingerprint, r: e.response };
      pipeline.set(this.key(clientId, e.key), JSON.stringify(record), 'EX', ttlSeconds);
    }
    await pipeline.exec();
  }

  async release(clientId: string, keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.client.redis.del(...keys.map((k) => this.key(clientId, k)));
  }
}

export type { Record as IdempotencyRecord };
