import { Injectable } from '@nestjs/common';
import { RedisClient } from '@app/redis';
import { CLAIM, COMPLETE, RELEASE } from './idempotency.scripts.js';

/** The scripts as ioredis commands (numkeys first): EVALSHA, falling back to EVAL after a SCRIPT FLUSH. */
interface RecordCommands {
  wbIdemClaim(numberOfKeys: number, ...keysThenArgs: (string | number)[]): Promise<(string | null)[]>;
  wbIdemComplete(numberOfKeys: number, ...keysThenArgs: (string | number)[]): Promise<number>;
  wbIdemRelease(numberOfKeys: number, ...keysThenArgs: (string | number)[]): Promise<number>;
}

export interface HeldKey {
  /** The Redis key (idempotencyKey). */
  key: string;
  /** The record this request holds it with (holding). */
  hold: string;
}

/**
 * Every Redis command the idempotency records get. On a single server each call is one script over all its keys;
 * on a Redis Cluster, one script per key, all sent at once (ioredis pipelines them per node).
 */
@Injectable()
export class IdempotencyRepository {
  private readonly redis: RecordCommands;

  constructor(private readonly client: RedisClient) {
    client.redis.defineCommand('wbIdemClaim', { lua: CLAIM });
    client.redis.defineCommand('wbIdemComplete', { lua: COMPLETE });
    client.redis.defineCommand('wbIdemRelease', { lua: RELEASE });
    this.redis = client.redis as unknown as RecordCommands;
  }

  /** Takes the free keys; per key, null when taken now, else the record that holds it. */
  async claim(keys: HeldKey[], leaseMs: number): Promise<(string | null)[]> {
    if (keys.length === 0) return [];
    const replies = await this.perCall(keys, (part) =>
      this.redis.wbIdemClaim(part.length, ...part.map((k) => k.key), leaseMs, ...part.map((k) => k.hold)),
    );
    return replies.map((reply) => (typeof reply === 'string' ? reply : null));
  }

  /** Stores each answer under its key, where the key is still held with `hold`. */
  async complete(entries: (HeldKey & { answer: string })[], ttlSeconds: number): Promise<void> {
    if (entries.length === 0) return;
    await this.perCall(entries, async (part) => {
      const args: (string | number)[] = part.map((e) => e.key);
      args.push(ttlSeconds);
      for (const e of part) args.push(e.hold, e.answer);
      await this.redis.wbIdemComplete(part.length, ...args);
      return [];
    });
  }

  /** Frees each key still held with `hold`. */
  async release(keys: HeldKey[]): Promise<void> {
    if (keys.length === 0) return;
    await this.perCall(keys, async (part) => {
      await this.redis.wbIdemRelease(part.length, ...part.map((k) => k.key), ...part.map((k) => k.hold));
      return [];
    });
  }

  /** One call for all the keys on a single server; one call per key on a cluster. Replies in the order given. */
  private async perCall<T, R>(items: T[], call: (part: T[]) => Promise<R[]>): Promise<R[]> {
    if (!this.client.isCluster) return call(items);
    return (await Promise.all(items.map((item) => call([item])))).flat();
  }
}
