import { Injectable } from '@nestjs/common';
import { SingleFlight, jitteredTtl } from '@app/cache';
import { AppConfig } from '@app/config';
import { CounterRepository, type CounterIncrement, type CounterState } from '@app/store';
import {
  CounterViewRepository,
  type PendingEntry,
  type ViewClaim,
  type ViewSnapshot,
  type WriteManyOutcome,
} from './counter-view.repository.js';

/** The largest value a counter may serve: beyond it, JSON numbers lose integers. */
const MAX_VALUE = Number.MAX_SAFE_INTEGER;

/** What the write of one counter did in the view. */
export type CounterWrite =
  /** The delta is in the view; `value` is what is served with it, null when the counter could not be filled. */
  { kind: 'added'; value: number | null } | { kind: 'held'; record: string } | { kind: 'range' };

/**
 * The hot view of counters in Redis: Postgres' (value, version) plus the deltas accepted but not yet applied.
 * Meets G3 (read-your-writes: a write is in `pending` before it is acknowledged) and G4 (convergence: once
 * applied, every id leaves `pending` and the base catches up, through `reconcile` after each commit or
 * through a refill on a miss, which also drops applied ids a missed reconcile left behind).
 */
@Injectable()
export class CounterView {
  private readonly fills = new SingleFlight<ViewSnapshot>();

  constructor(
    private readonly view: CounterViewRepository,
    private readonly counters: CounterRepository,
    private readonly config: AppConfig,
  ) {}

  /** The TTL of a base set now (jittered, so that bases set together do not expire together). */
  get baseTtl(): number {
    return jitteredTtl(this.config.redis.view.baseTtlMs, 0.1);
  }

  /** The served value: base + pending, refilled from Postgres on a miss. Throws when Redis is down. */
  async value(name: string): Promise<number> {
    return (await this.lookup(name)).value;
  }

  /**
   * `value`, and how it was served, for cache metrics: `hit` when the base was in Redis; on a miss, `filled` when
   * this call read Postgres (false when it joined a refill already running for the counter).
   */
  async lookup(name: string): Promise<{ value: number; hit: boolean; filled: boolean }> {
    const snap = await this.view.read(name);
    if (snap.base) return { value: total(snap), hit: true, filled: false };
    let filled = false;
    const filledSnap = await this.fill(name, () => (filled = true));
    return { value: total(filledSnap), hit: false, filled };
  }

  /**
   * Adds an accepted, not yet applied delta; `added` with the value served after it. With `claim`, the write's
   * Idempotency-Key is taken in the same script (single server; see `claimsWithWrites`): `held` when someone holds
   * it, and nothing changed. `range`: the value would pass the largest safe integer, and nothing stays changed (the
   * caller releases its claim). Throws when Redis is down.
   */
  async write(name: string, entry: PendingEntry, claim?: ViewClaim): Promise<CounterWrite> {
    const outcome = await this.view.write(name, entry, { pendingTtlMs: this.pendingTtlMs, maxAbs: MAX_VALUE, claim });
    if (outcome.kind === 'held') return outcome;
    if (outcome.kind === 'range') return { kind: 'range' };
    let snapshot = outcome.snapshot;
    if (!snapshot.base) {
      try {
        snapshot = await this.fill(name);
      } catch {
        // The delta is in the view; only its value is unknown (Postgres cannot fill the counter now). It stays:
        // the write goes on, and the value comes with the next read.
        return { kind: 'added', value: null };
      }
    }
    const value = total(snapshot);
    if (Math.abs(value) > MAX_VALUE) {
      await this.view.removePending(name, [entry.eventId]);
      return { kind: 'range' };
    }
    return { kind: 'added', value };
  }

  /**
   * `write` for a batch, without values: a cold counter is filled by its next read, not here, so a batch over a
   * thousand cold counters does not cost a thousand Postgres reads (and is checked against the bound only where its
   * base is cached). One script call on a single server.
   */
  async writeMany(items: { name: string; entry: PendingEntry; claim?: ViewClaim }[]): Promise<WriteManyOutcome> {
    return this.view.writeMany(items, {
      pendingTtlMs: this.pendingTtlMs,
      maxAbs: MAX_VALUE,
      leaseMs: items.find((i) => i.claim)?.claim?.leaseMs ?? 0,
    });
  }

  /** Whether `write` and `writeMany` can take Idempotency-Keys in their own script (not on a Redis Cluster). */
  get claimsWithWrites(): boolean {
    return this.view.claimsWithWrites;
  }

  private get pendingTtlMs(): number {
    return this.config.redis.view.pendingTtlMs;
  }

  /** Takes back deltas that will not be applied (their send failed). */
  async removePending(name: string, eventIds: string[]): Promise<void> {
    await this.view.removePending(name, eventIds);
  }

  /** `removePending` of many counters' deltas. */
  async removePendingMany(entries: { name: string; eventId: string }[]): Promise<void> {
    await Promise.all([...idsByName(entries)].map(([name, ids]) => this.view.removePending(name, ids)));
  }

  /**
   * After a transaction committed `increments` (some possibly already applied before, as duplicates):
   * moves each touched counter's base forward and removes all of those ids from pending. A counter this
   * transaction did not change (its ids were all duplicates) is refilled from Postgres instead: removing its
   * ids against a base older than them would undercount. Returns the value served afterwards, per counter.
   */
  async reconcile(increments: CounterIncrement[], changed: CounterState[]): Promise<Map<string, number>> {
    const ids = idsByName(increments);
    const states = new Map(changed.map((s) => [s.name, s]));
    // One pipeline for all of them: a consumer's chunk touches hundreds of counters, and one script call each cost
    // one socket write each.
    const known = [...ids].flatMap(([name, appliedIds]) => {
      const state = states.get(name);
      return state ? [{ name, state, appliedIds, baseTtlMs: this.baseTtl }] : [];
    });
    const snapshots = await this.view.reconcileMany(known);
    const reconciled = new Map(known.map(({ name }, i) => [name, snapshots[i]]));
    const values = await Promise.all(
      [...ids.keys()].map(async (name): Promise<[string, number]> => {
        const snap = reconciled.get(name);
        return [name, total(snap?.base ? snap : await this.fill(name))];
      }),
    );
    return new Map(values);
  }

  /**
   * A miss: one Postgres round trip reads the row and which pending ids it already contains; the base is set
   * (if newer) and those ids leave pending in one script. Ids not applied stay, however old: an acknowledged event
   * may wait in Kafka for as long as the consumers are down. Deltas that will never be applied (an API killed between
   * Redis and Kafka) are the sweep's to drop (ViewSweep), which knows how far the consumers got.
   */
  private fill(name: string, onLoad?: () => void): Promise<ViewSnapshot> {
    return this.fills.do(name, async () => {
      onLoad?.();
      const pending = await this.view.pendingEntries(name);
      const { state, appliedIds } = await this.counters.readWithApplied(
        name,
        pending.map((p) => p.eventId),
      );
      return this.view.reconcile(name, state, appliedIds, this.baseTtl);
    });
  }
}

/** Event ids grouped by counter name. */
function idsByName(entries: readonly { name: string; eventId: string }[]): Map<string, string[]> {
  const byName = new Map<string, string[]>();
  for (const { name, eventId } of entries) {
    const ids = byName.get(name);
    if (ids) ids.push(eventId);
    else byName.set(name, [eventId]);
  }
  return byName;
}

function total(snap: ViewSnapshot): number {
  return (snap.base?.value ?? 0) + snap.pendingSum;
}
