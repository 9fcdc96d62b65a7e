import { Injectable } from '@nestjs/common';
import { RedisClient } from '@app/redis';
import type { ChainableCommander, Redis } from 'ioredis';
import { ADD_PENDING, ADD_PENDING_MANY, READ, RECONCILE, REMOVE_PENDING } from './counter-view.scripts.js';

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

/** The scripts as ioredis commands: defineCommand sends EVALSHA and falls back to EVAL after a SCRIPT FLUSH. */
interface ViewCommands {
  wbViewAdd(base: string, pending: string, ...args: (string | number)[]): Promise<Reply>;
  wbViewRemove(base: string, pending: string, ...ids: string[]): Promise<Reply>;
  wbViewReconcile(base: string, pending: string, ...args: (string | number)[]): Promise<Reply>;
  wbViewRead(base: string, pending: string): Promise<Reply>;
  /** numkeys, the keys, then the arguments (ADD_PENDING_MANY). */
  wbViewAddMany(numberOfKeys: number, ...keysThenArgs: (string | number)[]): Promise<number>;
}

/** The same commands queued on a pipeline (they answer with the pipeline, the replies come from `exec`). */
interface PipelineViewCommands {
  wbViewAdd(base: string, pending: string, ...args: (string | number)[]): ChainableCommander;
  wbViewReconcile(base: string, pending: string, ...args: (string | number)[]): ChainableCommander;
}

const keys = (name: string) => [`{c:${name}}:base`, `{c:${name}}:pending`] as const;

function snapshot([value, version, sum]: Reply): ViewSnapshot {
  return {
    base: value === null || version === null ? undefined : { value: Number(value), version: Number(version) },
    pendingSum: sum === null ? 0 : Number(sum),
  };
}

/** Every Redis command the counter view sends. See counter-view.scripts.ts for the layout. */
@Injectable()
export class CounterViewRepository {
  private readonly redis: Redis & ViewCommands;

  constructor(private readonly client: RedisClient) {
    const redis = client.redis;
    redis.defineCommand('wbViewAdd', { numberOfKeys: 2, lua: ADD_PENDING });
    redis.defineCommand('wbViewRemove', { numberOfKeys: 2, lua: REMOVE_PENDING });
    redis.defineCommand('wbViewReconcile', { numberOfKeys: 2, lua: RECONCILE });
    redis.defineCommand('wbViewRead', { numberOfKeys: 2, lua: READ });
    // No fixed numberOfKeys: the caller passes the count first (one key per entry of the batch).
    redis.defineCommand('wbViewAddMany', { lua: ADD_PENDING_MANY });
    this.redis = redis as Redis & ViewCommands;
  }

  async addPending(name: string, entry: PendingEntry, pendingTtlMs: number): Promise<ViewSnapshot> {
    const [base, pending] = keys(name);
    return snapshot(
      await this.redis.wbViewAdd(base, pending, entry.eventId, entry.delta, entry.acceptedAt, pendingTtlMs),
    );
  }

  /**
   * `addPending` for many counters, replies not needed. On a single server: one script call for the whole batch
   * (ADD_PENDING_MANY). A call per counter, even pipelined, cost the API a command object, a timeout timer and a
   * reply each: ioredis was 16% of the batch endpoint's CPU profile. On a cluster, where the counters' keys are in
   * different slots: one pipeline per counter (pipelineGroups).
   */
  async addPendingMany(entries: { name: string; entry: PendingEntry }[], pendingTtlMs: number): Promise<void> {
    if (entries.length === 0) return;
    if (!this.client.isCluster) {
      const args: (string | number)[] = entries.map(({ name }) => keys(name)[1]);
      args.push(pendingTtlMs);
      for (const { entry } of entries) args.push(entry.eventId, entry.delta, entry.acceptedAt);
      await this.redis.wbViewAddMany(entries.length, ...args);
      return;
    }
    const replies = await this.client.pipelineGroups(
      entries.map(({ name, entry }) => (pipeline) => {
        const [base, pending] = keys(name);
        (pipeline as ChainableCommander & PipelineViewCommands).wbViewAdd(
          base,
          pending,
          entry.eventId,
          entry.delta,
          entry.acceptedAt,
          pendingTtlMs,
        );
      }),
    );
    const failed = replies.flat().find(([error]) => error !== null);
    if (failed?.[0]) throw failed[0];
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

  async pendingEntries(name: string): Promise<PendingEntry[]> {
    const fields = await this.redis.hgetall(keys(name)[1]);
    const entries: PendingEntry[] = [];
    for (const [eventId, raw] of Object.entries(fields)) {
      if (eventId === ' sum') continue;
      const [delta, acceptedAt] = raw.split(':');
      entries.push({ eventId, delta: Number(delta), acceptedAt: Number(acceptedAt) });
    }
    return entries;
  }
}
