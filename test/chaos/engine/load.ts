import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { activityFingerprint, counterFingerprint, eventId } from '@app/events';
import type { Prng } from './prng.js';
import { TENANTS } from './system.js';

export type WriteKind = 'increment' | 'increment-batch' | 'activity' | 'activity-batch';

export interface CounterWrite {
  type: 'counter';
  /** The Idempotency-Key (single) or item id (batch). */
  key: string;
  /** `<tenant>:<key>#<fingerprint>`: what the ledger holds once it is applied. */
  eventId: string;
  name: string;
  by: number;
}

export interface ActivityWrite {
  type: 'activity';
  key: string;
  eventId: string;
  actor: string;
  verb: string;
  object: string;
  occurredAt: string | undefined;
  data: Record<string, unknown> | null | undefined;
}

type Item = CounterWrite | ActivityWrite;

export interface ChaosLoadOptions {
  apiUrls: string[];
  clients: number;
  counters: number;
  actors: number;
  pauseMs: number;
  rng: Prng;
}

export interface LoadStats {
  /** HTTP requests sent, by write kind (retries included). */
  requests: Record<WriteKind | 'read', number>;
  /** Writes (requests' worth of items) started, by kind. */
  writes: Record<WriteKind, number>;
  /** Answers by status (0: no answer: connection refused or reset, timeout). */
  statuses: Map<number, number>;
  /** Items acknowledged, by mode (`write-behind`, `write-through`). */
  modes: Map<string, number>;
  /** Items acknowledged as `duplicate`: a retry whose first attempt had been applied and recorded. */
  duplicates: number;
  /** Batch items answered `in-flight` (retried). */
  itemsInFlight: number;
  /** Writes that needed more than one request to be acknowledged, and the most requests one needed. */
  retriedWrites: number;
  maxAttempts: number;
  /** Reads (GET of a counter) by status. */
  reads: Map<number, number>;
}

const VERBS = ['viewed', 'liked', 'shared', 'commented'];

/**
 * The chaos run's client load and its oracle. Closed loop: each client sends one write at a time (single and
 * batch increments, single and batch activities, the odd read) to the API processes in turn. Every write carries
 * idempotency keys (the header, or an `id` per batch item) and is retried with the SAME keys until every item of
 * it is acknowledged (2xx, item status `accepted` or `duplicate`), as a careful client would: a write that was
 * applied but whose answer was lost (API killed, timeout, 503 after a send that landed late) is therefore always
 * acknowledged in the end, so the oracle can demand that Postgres hold exactly the acknowledged writes.
 *
 * Answers that no correct API gives to these requests (400, 422, an event id other than `<tenant>:<key>#<fingerprint>`, a
 * malformed body) are recorded as violations; so is a 500 (a failure of a dependency must be a 503).
 */
export class ChaosLoad {
  readonly counterAcks = new Map<string, CounterWrite>();
  readonly activityAcks = new Map<string, ActivityWrite>();
  /** How and when each acknowledged event id was acknowledged, for the diagnosis of a missing one. */
  readonly ackedHow = new Map<string, { mode: string; at: number }>();
  /** Items still unacknowledged when the drain deadline passed. */
  readonly unacknowledged: Item[] = [];
  readonly violations: string[] = [];
  readonly stats: LoadStats = emptyStats();
  readonly counterNames: string[];
  readonly actors: string[];
  private readonly tag = randomBytes(3).toString('hex');
  private stopping = false;
  private deadline = Infinity;
  private workers: Promise<void>[] = [];

  constructor(private readonly options: ChaosLoadOptions) {
    this.counterNames = Array.from({ length: options.counters }, (_, i) => `chaos:c${i}`);
    this.actors = Array.from({ length: options.actors }, (_, i) => `chaos-actor-${i}`);
  }

  start(): void {
    this.workers = Array.from({ length: this.options.clients }, (_, i) =>
      this.worker(i, this.options.rng.fork(`client-${i}`)),
    );
  }

  get acknowledged(): number {
    return this.counterAcks.size + this.activityAcks.size;
  }

  /**
   * No new writes; the writes in progress are retried until acknowledged or `drainTimeoutMs` passes (then they
   * are listed in `unacknowledged`). Call it with every service up.
   */
  async stop(drainTimeoutMs: number): Promise<void> {
    this.stopping = true;
    this.deadline = Date.now() + drainTimeoutMs;
    await Promise.all(this.workers);
  }

  /** Per counter, the sum of the deltas of its distinct acknowledged event ids (G2's oracle). */
  expectedCounters(): Map<string, number> {
    const sums = new Map<string, number>();
    for (const w of this.counterAcks.values()) sums.set(w.name, (sums.get(w.name) ?? 0) + w.by);
    return sums;
  }

  private count<K>(map: Map<K, number>, key: K, n = 1): void {
    map.set(key, (map.get(key) ?? 0) + n);
  }

  private async worker(index: number, rng: Prng): Promise<void> {
    const tenant = TENANTS[index % TENANTS.length] ?? TENANTS[0];
    let n = 0;
    while (!this.stopping) {
      n += 1;
      const kind = rng.weighted<WriteKind | 'read'>([
        ['increment', 40],
        ['increment-batch', 20],
        ['activity', 20],
        ['activity-batch', 10],
        ['read', 10],
      ]);
      if (kind === 'read') {
        await this.read(rng);
      } else {
        const key = (j?: number) => `${this.tag}-w${index}-${n}${j === undefined ? '' : `-${j}`}`;
        const size = kind === 'increment-batch' || kind === 'activity-batch' ? rng.int(1, 25) : 1;
        const items: Item[] = Array.from({ length: size }, (_, j) => {
          const k = size === 1 && (kind === 'increment' || kind === 'activity') ? key() : key(j);
          return kind === 'increment' || kind === 'increment-batch'
            ? this.counterWrite(rng, tenant.client, k)
            : this.activityWrite(rng, tenant.client, k);
        });
        this.stats.writes[kind] += 1;
        await this.submit(kind, items, tenant.key, index, rng);
      }
      if (this.options.pauseMs > 0) await sleep(Math.round(this.options.pauseMs * rng.between(0.5, 1.5)));
    }
  }

  private counterWrite(rng: Prng, client: string, key: string): CounterWrite {
    // Deltas from -3 to 9, never 0, and now and then a large one: a lost or doubled event shows in the sum.
    const by = rng.chance(0.05) ? rng.int(-1000, 1000) || 7 : rng.int(-3, 8) || 9;
    const name = rng.pick(this.counterNames);
    return { type: 'counter', key, eventId: eventId(client, key, counterFingerprint(name, by)), name, by };
  }

  private activityWrite(rng: Prng, client: string, key: string): ActivityWrite {
    const occurredAt = rng.chance(0.5) ? new Date(Date.now() - rng.int(0, 3_600_000)).toISOString() : undefined;
    const data = rng.weighted<Record<string, unknown> | null | undefined>([
      [undefined, 5],
      [null, 2],
      [{ n: rng.int(0, 1_000_000), tags: ['chaos', `t${rng.int(0, 9)}`], nested: { ok: rng.chance(0.5) } }, 3],
    ]);
    const activity = { actor: rng.pick(this.actors), verb: rng.pick(VERBS), object: `post:${rng.int(1, 10_000)}` };
    const print = activityFingerprint({ ...activity, occurredAt, data });
    return { type: 'activity', key, eventId: eventId(client, key, print), ...activity, occurredAt, data };
  }

  private activityBody(item: ActivityWrite, withId: boolean): Record<string, unknown> {
    return {
      ...(withId ? { id: item.key } : {}),
      actor: item.actor,
      verb: item.verb,
      object: item.object,
      ...(item.occurredAt === undefined ? {} : { occurredAt: item.occurredAt }),
      ...(item.data === undefined ? {} : { data: item.data }),
    };
  }

  /** Sends the write until every item is acknowledged (or, while stopping, the drain deadline passes). */
  private async submit(kind: WriteKind, items: Item[], apiKey: string, worker: number, rng: Prng): Promise<void> {
    let pending = items;
    let attempt = 0;
    while (pending.length > 0) {
      if (Date.now() > this.deadline) {
        this.unacknowledged.push(...pending);
        return;
      }
      attempt += 1;
      const base = this.options.apiUrls[(worker + attempt) % this.options.apiUrls.length] ?? '';
      const answer = await this.send(kind, pending, base, apiKey, rng);
      this.stats.requests[kind] += 1;
      this.count(this.stats.statuses, answer.status);
      if (answer.status >= 200 && answer.status < 300) {
        pending = this.acknowledge(kind, pending, answer.body);
      } else if (answer.status >= 400 && answer.status < 500 && answer.status !== 409 && answer.status !== 429) {
        this.violations.push(
          `${kind} ${pending.map((p) => p.eventId).join(',')}: answered ${answer.status} ${JSON.stringify(answer.body)}`,
        );
        // Definitively refused: it must not be applied; the oracle checks that it is not.
        return;
      } else if (answer.status >= 500 && answer.status !== 503) {
        this.violations.push(`${kind}: answered ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`);
      }
      if (pending.length === 0) break;
      const backoff = Math.min(2000, 100 * 2 ** Math.min(attempt, 5)) * rng.between(0.5, 1.5);
      await sleep(Math.round(Math.max(backoff, Math.min(answer.retryAfterMs ?? 0, 2000))));
    }
    if (attempt > 1) this.stats.retriedWrites += 1;
    this.stats.maxAttempts = Math.max(this.stats.maxAttempts, attempt);
  }

  private async send(
    kind: WriteKind,
    items: Item[],
    base: string,
    apiKey: string,
    rng: Prng,
  ): Promise<{ status: number; body: unknown; retryAfterMs?: number }> {
    let path: string;
    let body: unknown;
    const headers: Record<string, string> = { 'content-type': 'application/json', 'x-api-key': apiKey };
    const first = items[0];
    if (kind === 'increment' && first?.type === 'counter') {
      path = `/v1/counters/${first.name}/increment`;
      headers['idempotency-key'] = first.key;
      body = { by: first.by };
    } else if (kind === 'activity' && first?.type === 'activity') {
      path = '/v1/activities';
      headers['idempotency-key'] = first.key;
      // Half the time the key is in the body too (it must then equal the header).
      body = this.activityBody(first, rng.chance(0.5));
    } else if (kind === 'increment-batch') {
      path = '/v1/counters/batch';
      body = {
        increments: items.flatMap((i) => (i.type === 'counter' ? [{ name: i.name, by: i.by, id: i.key }] : [])),
      };
    } else {
      path = '/v1/activities/batch';
      body = { activities: items.flatMap((i) => (i.type === 'activity' ? [this.activityBody(i, true)] : [])) };
    }
    try {
      const response = await fetch(`${base}${path}`, {
        method: 'POST',
        headers,
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(20_000),
      });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // Kept as text for the report.
      }
      const retryAfter = Number(response.headers.get('retry-after'));
      return {
        status: response.status,
        body: parsed,
        ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterMs: retryAfter * 1000 } : {}),
      };
    } catch {
      return { status: 0, body: null };
    }
  }

  /** Records what a 2xx acknowledged; returns the items still to retry. */
  private acknowledge(kind: WriteKind, items: Item[], body: unknown): Item[] {
    const answer = (body ?? {}) as {
      eventId?: unknown;
      id?: unknown;
      mode?: unknown;
      results?: { eventId?: unknown; id?: unknown; status?: unknown; mode?: unknown }[];
    };
    if (kind === 'increment' || kind === 'activity') {
      const item = items[0];
      if (!item) return [];
      const id = kind === 'increment' ? answer.eventId : answer.id;
      if (id !== item.eventId) {
        this.violations.push(`${kind} ${item.eventId}: acknowledged with event id ${JSON.stringify(id)}`);
      }
      this.ack(item, String(answer.mode), false);
      return [];
    }
    const results = Array.isArray(answer.results) ? answer.results : [];
    if (results.length !== items.length) {
      this.violations.push(`${kind}: ${items.length} items answered with ${results.length} results`);
      return items;
    }
    const retry: Item[] = [];
    items.forEach((item, i) => {
      const result = results[i] ?? {};
      const id = kind === 'increment-batch' ? result.eventId : result.id;
      if (id !== item.eventId) {
        this.violations.push(`${kind} item ${item.eventId}: answered for event id ${JSON.stringify(id)}`);
      }
      switch (result.status) {
        case 'accepted':
        case 'duplicate':
          this.ack(item, String(result.mode), result.status === 'duplicate');
          break;
        case 'in-flight':
          this.stats.itemsInFlight += 1;
          retry.push(item);
          break;
        default:
          // `conflict`: the same key with a different body, which this load never sends.
          this.violations.push(`${kind} item ${item.eventId}: status ${JSON.stringify(result.status)}`);
      }
    });
    return retry;
  }

  private ack(item: Item, mode: string, duplicate: boolean): void {
    if (duplicate) this.stats.duplicates += 1;
    this.count(this.stats.modes, mode);
    if (item.type === 'counter') this.counterAcks.set(item.eventId, item);
    else this.activityAcks.set(item.eventId, item);
    this.ackedHow.set(item.eventId, { mode, at: Date.now() });
  }

  private async read(rng: Prng): Promise<void> {
    const base = rng.pick(this.options.apiUrls);
    const tenant = rng.pick(TENANTS);
    this.stats.requests.read += 1;
    try {
      const response = await fetch(`${base}/v1/counters/${rng.pick(this.counterNames)}`, {
        headers: { 'x-api-key': tenant.key },
        signal: AbortSignal.timeout(10_000),
      });
      await response.arrayBuffer();
      this.count(this.stats.reads, response.status);
    } catch {
      this.count(this.stats.reads, 0);
    }
  }
}

/** Statistics of a load that has not sent anything yet. */
export function emptyStats(): LoadStats {
  return {
    requests: { increment: 0, 'increment-batch': 0, activity: 0, 'activity-batch': 0, read: 0 },
    writes: { increment: 0, 'increment-batch': 0, activity: 0, 'activity-batch': 0 },
    statuses: new Map(),
    modes: new Map(),
    duplicates: 0,
    itemsInFlight: 0,
    retriedWrites: 0,
    maxAttempts: 0,
    reads: new Map(),
  };
}
