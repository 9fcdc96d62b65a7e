import { Injectable } from '@nestjs/common';
import { RedisClient } from '@app/redis';
import { type ChainableCommander, Cluster, type Redis } from 'ioredis';
import { READ, RECONCILE, REMOVE_PENDING, WRITE, WRITE_MANY } from './counter-view.scripts.js';

/** What the view holds for one counter. `base` is undefined on a miss (expired, evicted or flushed). */
export interface ViewSnapshot {
  base: { value: number; version: number } | undefined;
  pendingSum: number;
}

export interface PendingEntry {
  eventId: string;
  delta: number;
  acceptedAt: number;
}

type Reply = [string | null, string | null, string | null];
type WriteReply = ['ok' | 'range', string | null, string | null, string | null] | ['held', string];

/** The scripts as ioredis commands: defineCommand sends EVALSHA and falls back to EVAL after a SCRIPT FLUSH. */
interface ViewCommands {
  /** numkeys (2, or 3 with an idempotency key), the keys, then the arguments (WRITE). */
  wbViewWrite(numberOfKeys: number, ...keysThenArgs: (string | number)[]): Promise<WriteReply>;
  /** numkeys, the keys, then the arguments (WRITE_MANY). */
  wbViewWriteMany(numberOfKeys: number, ...keysThenArgs: (string | number)[]): Promise<['range', number] | string[]>;
  wbViewRemove(base: string, pending: string, ...ids: string[]): Promise<Reply>;
  wbViewReconcile(base: string, pending: string, ...args: (string | number)[]): Promise<Reply>;
  wbViewRead(base: string, pending: string): Promise<Reply>;
}

/** The same commands queued on a pipeline (they answer with the pipeline, the replies come from `exec`). */
interface PipelineViewCommands {
  wbViewReconcile(base: string, pending: string, ...args: (string | number)[]): ChainableCommander;
}

const keys = (name: string) => [`{c:${name}}:base`, `{c:${name}}:pending`] as const;

function snapshot([value, version, sum]: Reply): ViewSnapshot {
  return {
    base: value === null || version === null ? undefined : { value: Number(value), version: Number(version) },
    pendingSum: sum === null ? 0 : Number(sum),
  };
}

/** The entries of a pending hash (its ` sum` field aside). */
function entriesOf(fields: Record<string, string>): PendingEntry[] {
  const entries: PendingEntry[] = [];
  for (const [eventId, raw] of Object.entries(fields)) {
    if (eventId === ' sum') continue;
    const [delta, acceptedAt] = raw.split(':');
    entries.push({ eventId, delta: Number(delta), acceptedAt: Number(acceptedAt) });
  }
  return entries;
}

/** An Idempotency-Key taken in the same script as the view change: its Redis key, holding record and lease. */
export interface ViewClaim {
  key: string;
  hold: string;
  leaseMs: number;
}

/** What the write of one counter did. */
export type WriteOutcome =
  | { kind: 'added'; snapshot: ViewSnapshot }
  /** The idempotency key is held: by this record. Nothing changed. */
  | { kind: 'held'; record: string }
  /** The served value would pass the bound. Nothing changed. */
  | { kind: 'range'; snapshot: ViewSnapshot };

/** What the write of a batch did: per item, undefined (added) or the record that holds its key; or `range`. */
export type WriteManyOutcome = { kind: 'done'; held: (string | undefined)[] } | { kind: 'range'; index: number };

/** Every Redis command the counter view sends. See counter-view.scripts.ts for the layout. */
@Injectable()
export class CounterViewRepository {
  private readonly redis: Redis & ViewCommands;

  constructor(private readonly client: RedisClient) {
    const redis = client.redis;
    // No fixed numberOfKeys where the caller passes the count first.
    redis.defineCommand('wbViewWrite', { lua: WRITE });
    redis.defineCommand('wbViewWriteMany', { lua: WRITE_MANY });
    redis.defineCommand('wbViewRemove', { numberOfKeys: 2, lua: REMOVE_PENDING });
    redis.defineCommand('wbViewReconcile', { numberOfKeys: 2, lua: RECONCILE });
    redis.defineCommand('wbViewRead', { numberOfKeys: 2, lua: READ });
    this.redis = redis as Redis & ViewCommands;
  }

  /** Whether a claim can go in the same script as the view change (single server: every key in one place). */
  get claimsWithWrites(): boolean {
    return !this.client.isCluster;
  }

  /**
   * Adds one pending delta, refused past `maxAbs` (when the base is cached). With `claim` (single server only), the
   * Idempotency-Key is taken in the same script, and nothing changes when someone else holds it.
   */
  async write(
    name: string,
    entry: PendingEntry,
    options: { pendingTtlMs: number; maxAbs: number; claim?: ViewClaim | undefined },
  ): Promise<WriteOutcome> {
    const [base, pending] = keys(name);
    const { claim } = options;
    const args: (string | number)[] = [entry.eventId, entry.delta, entry.acceptedAt, options.pendingTtlMs];
    args.push(options.maxAbs);
    const reply = claim
      ? await this.redis.wbViewWrite(3, base, pending, claim.key, ...args, claim.hold, claim.leaseMs)
      : await this.redis.wbViewWrite(2, base, pending, ...args);
    if (reply[0] === 'held') return { kind: 'held', record: reply[1] };
    const snap = snapshot([reply[1], reply[2], reply[3]]);
    return reply[0] === 'ok' ? { kind: 'added', snapshot: snap } : { kind: 'range', snapshot: snap };
  }

  /**
   * Adds the pending deltas of a batch, refusing the whole batch when one item would take its counter past `maxAbs`.
   * On a single server: one script call, which also takes the items' Idempotency-Keys. On a cluster (claims must be
   * taken before, and `claim` left out): one script call per item, which ioredis pipelines per node.
   */
  async writeMany(
    items: { name: string; entry: PendingEntry; claim?: ViewClaim | undefined }[],
    options: { pendingTtlMs: number; maxAbs: number; leaseMs: number },
  ): Promise<WriteManyOutcome> {
    if (items.length === 0) return { kind: 'done', held: [] };
    if (this.client.isCluster) return this.writeEach(items, options);
    const keyArgs: string[] = [];
    for (const { name } of items) keyArgs.push(...keys(name));
    const args: (string | number)[] = [options.pendingTtlMs, options.maxAbs, options.leaseMs];
    for (const { entry, claim } of items) {
      let index = 0;
      if (claim) {
        keyArgs.push(claim.key);
        index = keyArgs.length;
      }
      args.push(entry.eventId, entry.delta, entry.acceptedAt, index, claim?.hold ?? '');
    }
    const reply = await this.redis.wbViewWriteMany(keyArgs.length, ...keyArgs, ...args);
    if (reply[0] === 'range') return { kind: 'range', index: Number(reply[1]) - 1 };
    return { kind: 'done', held: (reply as string[]).slice(1).map((r) => (r === '' ? undefined : r)) };
  }

  private async writeEach(
    items: { name: string; entry: PendingEntry; claim?: ViewClaim | undefined }[],
    options: { pendingTtlMs: number; maxAbs: number },
  ): Promise<WriteManyOutcome> {
    if (items.some((item) => item.claim)) throw new Error('on a Redis Cluster, take idempotency keys before the view');
    const outcomes = await Promise.all(items.map(({ name, entry }) => this.write(name, entry, options)));
    const index = outcomes.findIndex((o) => o.kind === 'range');
    if (index >= 0) {
      // The others were added already: take them back, so that nothing of the batch shows.
      await Promise.all(
        items.flatMap(({ name, entry }, i) => (i === index ? [] : [this.removePending(name, [entry.eventId])])),
      );
      return { kind: 'range', index };
    }
    return { kind: 'done', held: items.map(() => undefined) };
  }

  async removePending(name: string, eventIds: string[]): Promise<ViewSnapshot> {
    const [base, pending] = keys(name);
    return snapshot(await this.redis.wbViewRemove(base, pending, ...eventIds));
  }

  async reconcile(
    name: string,
    state: { value: number; version: number },
    appliedIds: string[],
    baseTtlMs: number,
  ): Promise<ViewSnapshot> {
    const [base, pending] = keys(name);
    return snapshot(
      await this.redis.wbViewReconcile(base, pending, state.value, state.version, baseTtlMs, ...appliedIds),
    );
  }

  /** `reconcile` of many counters in one pipeline (see addPendingMany); the snapshots in the order given. */
  async reconcileMany(
    items: { name: string; state: { value: number; version: number }; appliedIds: string[]; baseTtlMs: number }[],
  ): Promise<ViewSnapshot[]> {
    const replies = await this.client.pipelineGroups(
      items.map(({ name, state, appliedIds, baseTtlMs }) => (pipeline) => {
        const [base, pending] = keys(name);
        (pipeline as ChainableCommander & PipelineViewCommands).wbViewReconcile(
          base,
          pending,
          state.value,
          state.version,
          baseTtlMs,
          ...appliedIds,
        );
      }),
    );
    return replies.map(([[error, reply] = [null, null]]) => {
      if (error) throw error;
      return snapshot(reply as Reply);
    });
  }

  async read(name: string): Promise<ViewSnapshot> {
    const [base, pending] = keys(name);
    return snapshot(await this.redis.wbViewRead(base, pending));
  }

  /** Drops the cached base: the next read refills it from Postgres and drops applied pending ids. */
  async invalidate(name: string): Promise<void> {
    await this.redis.del(keys(name)[0]);
  }

  /**
   * The names of the counters that have pending deltas, a batch at a time (SCAN, on every master of a cluster):
   * for the sweep, which must find them without an index that every write would have to keep.
   */
  async *countersWithPending(count = 500): AsyncGenerator<string[]> {
    const prefix = this.client.redis.options.keyPrefix ?? '';
    // SCAN's MATCH is not prefixed by ioredis: the pattern and the keys it returns carry the prefix.
    const pattern = `${prefix}{c:*}:pending`;
    const servers = this.client.redis instanceof Cluster ? this.client.redis.nodes('master') : [this.client.redis];
    for (const server of servers) {
      let cursor = '0';
      do {
        const [next, found] = await server.scan(cursor, 'MATCH', pattern, 'COUNT', count);
        cursor = next;
        const names = found.flatMap((key) => {
          const match = /^\{c:(.*)\}:pending$/.exec(key.slice(prefix.length));
          return match?.[1] === undefined ? [] : [match[1]];
        });
        if (names.length > 0) yield names;
      } while (cursor !== '0');
    }
  }

  async pendingEntries(name: string): Promise<PendingEntry[]> {
    return entriesOf(await this.redis.hgetall(keys(name)[1]));
  }

  /** `pendingEntries` of many counters in one round trip (pipelineGroups), in the order given. */
  async pendingEntriesMany(names: string[]): Promise<PendingEntry[][]> {
    const replies = await this.client.pipelineGroups(
      names.map((name) => (pipeline) => {
        pipeline.hgetall(keys(name)[1]);
      }),
    );
    return replies.map(([[error, fields] = [null, {}]]) => {
      if (error) throw error;
      return entriesOf(fields as Record<string, string>);
    });
  }
}
