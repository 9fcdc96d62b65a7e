import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { activityFingerprint, counterFingerprint, eventId } from '@app/events';
import { FaultWindows } from './probes.js';
import type { Prng } from './prng.js';
import { TENANTS } from './system.js';

export type WriteKind = 'increment' | 'increment-batch' | 'activity' | 'activity-batch';

type Tenant = (typeof TENANTS)[number];

export interface CounterWrite {
  type: 'counter';
  /**
   * The Idempotency-Key (single) or item id (batch). Undefined for a write sent without one, until an outcome-unknown
   * answer hands out the key to retry with.
   */
  key: string | undefined;
  /** `<tenant>:<key>#<fingerprint>`: what the ledger holds once it is applied; undefined while the key is. */
  eventId: string | undefined;
  /** Sent without a key at first. */
  keyless: boolean;
  name: string;
  by: number;
}

/** An acknowledged increment: its event id is known (for a keyless write, the one the API answered with). */
export type AckedCounter = CounterWrite & { eventId: string };

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

/**
 * A keyless increment that got no answer (the connection cut, the API killed mid-request, a timeout) or a 5xx other
 * than 503: it may or may not have been applied, under an event id the client never learnt. It is not retried: a
 * retry without the key could count it twice.
 */
export interface AmbiguousWrite {
  client: string;
  name: string;
  by: number;
  /** The request it was part of (a batch's items share one). */
  request: number;
  /**
   * Its place among the request's items: the API keys the first `<uuid>` and the n-th after it `<uuid>.<n>`, one UUID
   * per request (write-keys.ts). Undefined when it is not known.
   */
  index: number | undefined;
  /** When that request ended, and how. */
  at: number;
  answer: string;
}

export interface ChaosLoadOptions {
  apiUrls: string[];
  clients: number;
  /** Counters written each by one probe client, which reads its counter back after every acknowledged write. */
  probes: number;
  counters: number;
  actors: number;
  pauseMs: number;
  rng: Prng;
}

export interface ProbeStats {
  counters: number;
  /** GETs compared with what the probe had acknowledged, right after each acknowledged write. */
  checks: number;
  equal: number;
  /** Checks that differed while a Redis or Postgres fault was active or had just healed: allowed (they must heal). */
  differedInFaults: number;
  /** Checks that differed with no such fault near: violations. */
  differed: number;
  /** The largest difference (served - acknowledged) seen during faults, either sign. */
  maxOver: number;
  maxUnder: number;
  /** GETs not answered 200 (retried on the next API), and checks given up without a 200. */
  unavailable: number;
  unread: number;
}

export interface LoadStats {
  /** HTTP requests sent, by write kind (retries included). */
  requests: Record<WriteKind | 'read', number>;
  /** Writes (requests' worth of items) started, by kind. */
  writes: Record<WriteKind, number>;
  /** Of those, the counter writes sent without keys. */
  keyless: Record<'increment' | 'increment-batch', number>;
  /** Answers by status (0: no answer: connection refused or reset, timeout). */
  statuses: Map<number, number>;
  /** 503s that said the outcome is unknown (keyed or not), retried with the keys they gave. */
  outcomeUnknown: number;
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
  probes: ProbeStats;
}

const VERBS = ['viewed', 'liked', 'shared', 'commented'];

/** Share of the counter writes sent without keys. */
const KEYLESS_SHARE = 1 / 3;

/** The probes' messages about differences outside faults: the first ones, the rest are counted. */
const MAX_PROBE_VIOLATIONS = 10;

/** A key the API made up for a write sent without one: a UUID, `.n` for the next items of a batch (write-keys.ts). */
export const API_MADE_KEY = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(\.\d+)?$/;

interface Answer {
  status: number;
  body: unknown;
  retryAfterMs?: number;
  /** The Idempotency-Key header of the answer (an outcome-unknown 503 names the key to retry with). */
  idempotencyKey?: string | null;
  /** No answer because no connection could be opened: nothing was sent. */
  refused?: boolean;
}

/**
 * The chaos run's client load and its oracle. Closed loop: each client sends one write at a time (single and
 * batch increments, single and batch activities, the odd read) to the API processes in turn.
 *
 * Most writes carry idempotency keys (the header, or an `id` per batch item) and are retried with the SAME keys until
 * every item is acknowledged (2xx, item status `accepted` or `duplicate`), as a careful client would: a write that
 * was applied but whose answer was lost (API killed, timeout, 503 after a send that landed late) is therefore always
 * acknowledged in the end, so the oracle can demand that Postgres hold exactly those writes.
 *
 * A third of the counter writes (positive deltas) go without keys, as most clients send them. A 2xx acknowledges one
 * under the event id it answers with. A 503 `outcome-unknown` hands out the keys to retry with, and the write is then
 * retried with them like a keyed one, so it is exactly-once as well. Any other 503 or a 429 applied nothing: it is
 * retried without keys, as is one whose connection was refused. No answer at all leaves it AMBIGUOUS: applied or
 * not, under an id the client cannot know, so it is not retried (that could count it twice) and the oracle bounds
 * each counter by it instead.
 *
 * Besides, `probes` clients write one counter each, keyed, one write at a time, and read their counter back after
 * every acknowledged write: read-your-writes, checked while the faults happen (see `windows`).
 *
 * Answers that no correct API gives (400, 422, an event id other than `<tenant>:<key>#<fingerprint>`, a malformed
 * body) are recorded as violations; so is a 500 (a failure of a dependency must be a 503).
 */
export class ChaosLoad {
  readonly counterAcks = new Map<string, AckedCounter>();
  readonly activityAcks = new Map<string, ActivityWrite>();
  /** Keyless increments that may or may not have been applied (see AmbiguousWrite). */
  readonly ambiguous: AmbiguousWrite[] = [];
  /** How and when each acknowledged event id was acknowledged, for the diagnosis of a missing one. */
  readonly ackedHow = new Map<string, { mode: string; at: number }>();
  /** Items still unacknowledged when the drain deadline passed. */
  readonly unacknowledged: Item[] = [];
  readonly violations: string[] = [];
  readonly stats: LoadStats = emptyStats();
  readonly counterNames: string[];
  readonly probeNames: string[];
  readonly actors: string[];
  /** The episodes with Redis or Postgres faults, told by the campaign: a probe's difference during one is allowed. */
  readonly windows = new FaultWindows();
  private readonly tag = randomBytes(3).toString('hex');
  private stopping = false;
  private deadline = Infinity;
  private workers: Promise<void>[] = [];
  private requests = 0;
  /** Keyless writes on the wire, per API URL; and who waits for one (an api-kill). */
  private readonly keylessOnWire = new Map<string, number>();
  private readonly keylessWaiters = new Set<{ url: string; resolve: (found: boolean) => void }>();

  constructor(private readonly options: ChaosLoadOptions) {
    this.counterNames = Array.from({ length: options.counters }, (_, i) => `chaos:c${i}`);
    this.probeNames = Array.from({ length: options.probes }, (_, i) => `chaos:probe${i}`);
    this.actors = Array.from({ length: options.actors }, (_, i) => `chaos-actor-${i}`);
    this.stats.probes.counters = options.probes;
  }

  start(): void {
    this.workers = [
      ...Array.from({ length: this.options.clients }, (_, i) => this.worker(i, this.options.rng.fork(`client-${i}`))),
      ...this.probeNames.map((name, i) => this.probe(i, name, this.options.rng.fork(`probe-${i}`))),
    ];
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

  /** Per counter, the sum of its ambiguous deltas: how far above the acknowledged sum Postgres may be. */
  ambiguousCounters(): Map<string, number> {
    const sums = new Map<string, number>();
    for (const w of this.ambiguous) sums.set(w.name, (sums.get(w.name) ?? 0) + w.by);
    return sums;
  }

  /** Keyless writes sent to `apiUrl` and not answered yet. */
  keylessInFlight(apiUrl: string): number {
    return this.keylessOnWire.get(apiUrl) ?? 0;
  }

  /** Resolves true once a keyless write is on its way to `apiUrl` (at once if one is), false after `timeoutMs`. */
  whenKeylessInFlight(apiUrl: string, timeoutMs: number): Promise<boolean> {
    if (this.keylessInFlight(apiUrl) > 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = {
        url: apiUrl,
        resolve: (found: boolean) => {
          clearTimeout(timer);
          this.keylessWaiters.delete(waiter);
          resolve(found);
        },
      };
      const timer = setTimeout(() => waiter.resolve(false), timeoutMs);
      this.keylessWaiters.add(waiter);
    });
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
        const keyless = (kind === 'increment' || kind === 'increment-batch') && rng.chance(KEYLESS_SHARE);
        const items: Item[] = Array.from({ length: size }, (_, j) => {
          const k = size === 1 && (kind === 'increment' || kind === 'activity') ? key() : key(j);
          if (kind === 'activity' || kind === 'activity-batch') return this.activityWrite(rng, tenant.client, k);
          return keyless
            ? this.keylessWrite(rng, rng.pick(this.counterNames))
            : this.counterWrite(rng, tenant.client, k, rng.pick(this.counterNames));
        });
        this.stats.writes[kind] += 1;
        if (keyless && (kind === 'increment' || kind === 'increment-batch')) this.stats.keyless[kind] += 1;
        await this.submit(kind, items, tenant, index, rng);
      }
      if (this.options.pauseMs > 0) await sleep(Math.round(this.options.pauseMs * rng.between(0.5, 1.5)));
    }
  }

  /**
   * A probe: the only writer of its counter, one keyed increment at a time; after each is acknowledged, the counter
   * is read (through the next API) and compared with the sum it acknowledged. A difference outside the windows of
   * Redis and Postgres faults is a violation of read-your-writes (G3); during one it is counted, and must be gone by
   * the first check after the window (else that check is the violation).
   */
  private async probe(index: number, name: string, rng: Prng): Promise<void> {
    const tenant = TENANTS[index % TENANTS.length] ?? TENANTS[0];
    const worker = this.options.clients + index;
    let acknowledged = 0;
    let n = 0;
    while (!this.stopping) {
      n += 1;
      const write = this.counterWrite(rng, tenant.client, `${this.tag}-p${index}-${n}`, name);
      const sentAt = Date.now();
      this.stats.writes.increment += 1;
      if (!(await this.submit('increment', [write], tenant, worker, rng))) return;
      acknowledged += write.by;
      await this.check(name, acknowledged, write, sentAt, worker + n);
      // Slower than the clients: a check every few tens of ms is plenty, and the machine is shared with the apps.
      await sleep(Math.round(Math.max(this.options.pauseMs, 10) * rng.between(1.5, 4.5)));
    }
  }

  private async check(name: string, acknowledged: number, last: CounterWrite, since: number, turn: number) {
    const probes = this.stats.probes;
    for (let attempt = 0; attempt < 20; attempt++) {
      const base = this.options.apiUrls[(turn + attempt) % this.options.apiUrls.length] ?? '';
      const read = await this.get(base, name, TENANTS[0].key);
      if (read.status === 200 && typeof read.value !== 'number') {
        this.violations.push(
          `G3: ${name} answered 200 through ${base} without a numeric value: ${JSON.stringify(read.value) ?? 'nothing'}`,
        );
        return;
      }
      if (read.status !== 200 || typeof read.value !== 'number') {
        probes.unavailable += 1;
        await sleep(250);
        continue;
      }
      probes.checks += 1;
      const drift = read.value - acknowledged;
      if (drift === 0) {
        probes.equal += 1;
        return;
      }
      const now = Date.now();
      if (this.windows.during(since, now).length > 0) {
        probes.differedInFaults += 1;
        probes.maxOver = Math.max(probes.maxOver, drift);
        probes.maxUnder = Math.min(probes.maxUnder, drift);
        return;
      }
      probes.differed += 1;
      if (probes.differed <= MAX_PROBE_VIOLATIONS) {
        const calm = this.windows.lastEnd(now);
        this.violations.push(
          `G3: ${name} served ${read.value} through ${base} at ${new Date(now).toISOString()}, acknowledged ` +
            `${acknowledged} (last write ${last.eventId}, sent ${new Date(since).toISOString()}); no Redis or ` +
            `Postgres fault ${calm === undefined ? 'so far' : `since ${new Date(calm).toISOString()}`}`,
        );
      }
      return;
    }
    probes.unread += 1;
  }

  private counterWrite(rng: Prng, client: string, key: string, name: string): CounterWrite {
    // Deltas from -3 to 9, never 0, and now and then a large one: a lost or doubled event shows in the sum.
    const by = rng.chance(0.05) ? rng.int(-1000, 1000) || 7 : rng.int(-3, 8) || 9;
    const eventIdOf = eventId(client, key, counterFingerprint(name, by));
    return { type: 'counter', key, eventId: eventIdOf, keyless: false, name, by };
  }

  /** Positive deltas only: an ambiguous write can then only raise its counter, which bounds it from both sides. */
  private keylessWrite(rng: Prng, name: string): CounterWrite {
    const by = rng.chance(0.05) ? rng.int(1, 1000) : rng.int(1, 9);
    return { type: 'counter', key: undefined, eventId: undefined, keyless: true, name, by };
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

  /**
   * Sends the write until every item is acknowledged (or, while stopping, the drain deadline passes). False when it
   * was not: refused, left ambiguous, or unacknowledged at the deadline.
   */
  private async submit(kind: WriteKind, items: Item[], tenant: Tenant, worker: number, rng: Prng): Promise<boolean> {
    let pending = items;
    let attempt = 0;
    const request = ++this.requests;
    while (pending.length > 0) {
      if (Date.now() > this.deadline) {
        this.unacknowledged.push(...pending);
        return false;
      }
      attempt += 1;
      const base = this.options.apiUrls[(worker + attempt) % this.options.apiUrls.length] ?? '';
      // A write is keyless or keyed as a whole: its items were made so, and an outcome-unknown keys them all.
      const keyless = pending.some((p) => p.type === 'counter' && p.key === undefined);
      const answer = keyless
        ? await this.onWire(base, () => this.send(kind, pending, base, tenant.key, rng))
        : await this.send(kind, pending, base, tenant.key, rng);
      this.stats.requests[kind] += 1;
      this.count(this.stats.statuses, answer.status);
      if (answer.status === 503 && problemType(answer.body) === '/problems/outcome-unknown') {
        this.stats.outcomeUnknown += 1;
      }
      if (answer.status >= 200 && answer.status < 300) {
        pending = this.acknowledge(kind, pending, answer.body, tenant.client);
      } else if (keyless) {
        const next = this.keylessFailure(kind, pending, answer, tenant.client, request);
        if (next === 'stop') return false;
      } else if (answer.status >= 400 && answer.status < 500 && answer.status !== 409 && answer.status !== 429) {
        this.violations.push(`${kind} ${pending.map(describe).join(',')}: answered ${answer.status} ${show(answer)}`);
        // Definitively refused: it must not be applied; the oracle checks that it is not.
        return false;
      } else if (answer.status >= 500 && answer.status !== 503) {
        this.violations.push(`${kind}: answered ${answer.status} ${show(answer).slice(0, 300)}`);
      }
      if (pending.length === 0) break;
      const backoff = Math.min(2000, 100 * 2 ** Math.min(attempt, 5)) * rng.between(0.5, 1.5);
      await sleep(Math.round(Math.max(backoff, Math.min(answer.retryAfterMs ?? 0, 2000))));
    }
    if (attempt > 1) this.stats.retriedWrites += 1;
    this.stats.maxAttempts = Math.max(this.stats.maxAttempts, attempt);
    return true;
  }

  /** Counts a keyless write on the wire to `base` while `send` runs, and wakes whoever waits for one. */
  private async onWire(base: string, send: () => Promise<Answer>): Promise<Answer> {
    this.keylessOnWire.set(base, this.keylessInFlight(base) + 1);
    for (const waiter of [...this.keylessWaiters]) if (waiter.url === base) waiter.resolve(true);
    try {
      return await send();
    } finally {
      this.keylessOnWire.set(base, this.keylessInFlight(base) - 1);
    }
  }

  /**
   * What a keyless write does after an answer other than 2xx: retry it with the keys an outcome-unknown 503 gave
   * (its items are keyed from then on), retry it without keys after any other 503, a 429 or a refused connection
   * (nothing was applied), and give it up otherwise: as ambiguous after no answer or a 5xx, as refused after a 4xx.
   */
  private keylessFailure(
    kind: WriteKind,
    items: Item[],
    answer: Answer,
    client: string,
    request: number,
  ): 'retry' | 'stop' {
    const counters = items.filter((i): i is CounterWrite => i.type === 'counter');
    const ambiguous = (why: string) => {
      counters.forEach((w, index) => {
        this.ambiguous.push({ client, name: w.name, by: w.by, request, index, at: Date.now(), answer: why });
      });
      return 'stop' as const;
    };
    if (answer.status === 503 && problemType(answer.body) === '/problems/outcome-unknown') {
      const keys = this.retryKeys(kind, counters, answer, client);
      if (typeof keys === 'string') {
        this.violations.push(`${kind} (keyless): outcome-unknown ${keys}: ${show(answer).slice(0, 300)}`);
        return ambiguous('outcome-unknown without usable keys');
      }
      counters.forEach((w, i) => {
        w.key = keys[i]?.key;
        w.eventId = keys[i]?.eventId;
      });
      return 'retry';
    }
    // A connection refused (the API down) carried nothing: as safe to retry as a 503.
    if (answer.status === 503 || answer.status === 429 || answer.refused) return 'retry';
    if (answer.status === 0) return ambiguous('no answer');
    if (answer.status >= 500) {
      this.violations.push(`${kind} (keyless): answered ${answer.status} ${show(answer).slice(0, 300)}`);
      return ambiguous(`answered ${answer.status}`);
    }
    this.violations.push(`${kind} (keyless, ${counters.length} item(s)): answered ${answer.status} ${show(answer)}`);
    return 'stop';
  }

  /**
   * The keys an outcome-unknown 503 hands out, checked: one per item, in the order sent, each with the event id
   * `<client>:<key>#<fingerprint>` of that item. A string saying what is wrong otherwise.
   */
  private retryKeys(
    kind: WriteKind,
    items: CounterWrite[],
    answer: Answer,
    client: string,
  ): { key: string; eventId: string }[] | string {
    const body = (answer.body ?? {}) as {
      idempotencyKey?: unknown;
      eventId?: unknown;
      items?: { id?: unknown; eventId?: unknown }[];
    };
    let given: { id?: unknown; eventId?: unknown }[];
    if (kind === 'increment') {
      if (answer.idempotencyKey !== body.idempotencyKey) {
        return `header Idempotency-Key ${String(answer.idempotencyKey)} and body ${String(body.idempotencyKey)} differ`;
      }
      given = [{ id: body.idempotencyKey, eventId: body.eventId }];
    } else if (Array.isArray(body.items)) {
      given = body.items;
    } else if (items.length === 1 && body.idempotencyKey !== undefined) {
      // The API answers a batch of one as it answers a single write (counters.service.ts, `retry`).
      given = [{ id: body.idempotencyKey, eventId: body.eventId }];
    } else {
      return 'without items';
    }
    if (given.length !== items.length) return `with ${given.length} keys for ${items.length} items`;
    const keys: { key: string; eventId: string }[] = [];
    for (const [i, item] of items.entries()) {
      const { id, eventId: answered } = given[i] ?? {};
      if (typeof id !== 'string') return `item ${i}: no key`;
      const expected = eventId(client, id, counterFingerprint(item.name, item.by));
      if (answered !== expected) return `item ${i}: event id ${String(answered)}, not ${expected}`;
      keys.push({ key: id, eventId: expected });
    }
    return keys;
  }

  private async send(kind: WriteKind, items: Item[], base: string, apiKey: string, rng: Prng): Promise<Answer> {
    let path: string;
    let body: unknown;
    const headers: Record<string, string> = { 'content-type': 'application/json', 'x-api-key': apiKey };
    const first = items[0];
    if (kind === 'increment' && first?.type === 'counter') {
      path = `/v1/counters/${first.name}/increment`;
      if (first.key !== undefined) headers['idempotency-key'] = first.key;
      body = { by: first.by };
    } else if (kind === 'activity' && first?.type === 'activity') {
      path = '/v1/activities';
      headers['idempotency-key'] = first.key;
      // Half the time the key is in the body too (it must then equal the header).
      body = this.activityBody(first, rng.chance(0.5));
    } else if (kind === 'increment-batch') {
      path = '/v1/counters/batch';
      body = {
        increments: items.flatMap((i) =>
          i.type === 'counter' ? [{ name: i.name, by: i.by, ...(i.key === undefined ? {} : { id: i.key }) }] : [],
        ),
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
        idempotencyKey: response.headers.get('idempotency-key'),
        ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterMs: retryAfter * 1000 } : {}),
      };
    } catch (error) {
      return {
        status: 0,
        body: null,
        refused: (error as { cause?: { code?: unknown } }).cause?.code === 'ECONNREFUSED',
      };
    }
  }

  /** Records what a 2xx acknowledged; returns the items still to retry. */
  private acknowledge(kind: WriteKind, items: Item[], body: unknown, client: string): Item[] {
    const answer = (body ?? {}) as {
      eventId?: unknown;
      id?: unknown;
      mode?: unknown;
      results?: { eventId?: unknown; id?: unknown; status?: unknown; mode?: unknown }[];
    };
    if (kind === 'increment' || kind === 'activity') {
      const item = items[0];
      if (!item) return [];
      this.ack(item, kind === 'increment' ? answer.eventId : answer.id, String(answer.mode), false, client);
      return [];
    }
    const results = Array.isArray(answer.results) ? answer.results : [];
    if (results.length !== items.length) {
      this.violations.push(`${kind}: ${items.length} items answered with ${results.length} results`);
      // Keyed items are retried with their keys; keyless ones may have been applied, under ids nobody told.
      return this.unlessKeyless(items, client, 'a 2xx with the wrong number of results');
    }
    const retry: Item[] = [];
    items.forEach((item, i) => {
      const result = results[i] ?? {};
      const id = kind === 'increment-batch' ? result.eventId : result.id;
      switch (result.status) {
        case 'accepted':
        case 'duplicate':
          this.ack(item, id, String(result.mode), result.status === 'duplicate', client);
          break;
        case 'in-flight':
          this.stats.itemsInFlight += 1;
          if (item.type === 'counter' && item.key === undefined) {
            this.violations.push(`${kind} item ${i} (keyless): answered in-flight`);
          } else {
            retry.push(item);
          }
          break;
        default:
          // `conflict`: the same key with a different body, which this load never sends.
          this.violations.push(`${kind} item ${describe(item)}: status ${JSON.stringify(result.status)}`);
      }
    });
    return retry;
  }

  /**
   * The keyed items of a write to retry; its keyless ones recorded as ambiguous (`whole`: `items` are all the items of
   * the request, in order, so each one's place is known).
   */
  private unlessKeyless(items: Item[], client: string, why: string, whole = true): Item[] {
    const request = ++this.requests;
    items.forEach((item, i) => {
      if (item.type === 'counter' && item.key === undefined) {
        const index = whole ? i : undefined;
        this.ambiguous.push({ client, name: item.name, by: item.by, request, index, at: Date.now(), answer: why });
      }
    });
    return items.filter((item) => item.type !== 'counter' || item.key !== undefined);
  }

  /**
   * Records an acknowledged item under `answeredId`, which must be its event id: for a write sent with a key, the
   * one the key makes; for a keyless one, `<client>:<a key the API made>#<its fingerprint>`, never seen before.
   */
  private ack(item: Item, answeredId: unknown, mode: string, duplicate: boolean, client: string): void {
    let id = item.eventId;
    if (duplicate) this.stats.duplicates += 1;
    this.count(this.stats.modes, mode);
    if (item.type === 'counter' && item.key === undefined) {
      const print = counterFingerprint(item.name, item.by);
      const parsed = typeof answeredId === 'string' ? parseEventId(answeredId) : undefined;
      if (!parsed || parsed.client !== client || parsed.print !== print || !API_MADE_KEY.test(parsed.key)) {
        this.violations.push(
          `keyless increment of ${item.name} by ${item.by}: acknowledged with event id ${JSON.stringify(answeredId)}, ` +
            `not ${client}:<a key the API made>#${print}`,
        );
      }
      if (typeof answeredId !== 'string') {
        // Applied, under an id nobody told: the oracle can only bound it.
        this.unlessKeyless([item], client, 'a 2xx without an event id', false);
        return;
      }
      if (this.counterAcks.has(answeredId)) {
        this.violations.push(
          `keyless increment of ${item.name}: acknowledged under ${answeredId}, already acknowledged`,
        );
      }
      id = answeredId;
      item.eventId = id;
      item.key = parsed?.key ?? answeredId;
    } else if (answeredId !== item.eventId) {
      this.violations.push(`${item.type} ${describe(item)}: acknowledged with event id ${JSON.stringify(answeredId)}`);
    }
    if (id === undefined) return;
    if (item.type === 'counter') this.counterAcks.set(id, { ...item, eventId: id });
    else this.activityAcks.set(id, item);
    this.ackedHow.set(id, { mode, at: Date.now() });
  }

  private async read(rng: Prng): Promise<void> {
    const tenant = rng.pick(TENANTS);
    this.stats.requests.read += 1;
    const read = await this.get(rng.pick(this.options.apiUrls), rng.pick(this.counterNames), tenant.key);
    this.count(this.stats.reads, read.status);
  }

  /** GET of a counter: the status (0: no answer) and the value served. */
  private async get(base: string, name: string, apiKey: string): Promise<{ status: number; value?: unknown }> {
    try {
      const response = await fetch(`${base}/v1/counters/${name}`, {
        headers: { 'x-api-key': apiKey },
        signal: AbortSignal.timeout(10_000),
      });
      const text = await response.text();
      let value: unknown;
      try {
        value = (JSON.parse(text) as { value?: unknown }).value;
      } catch {
        // Not JSON: no value.
      }
      return { status: response.status, value };
    } catch {
      return { status: 0 };
    }
  }
}

/** `<client>:<key>#<fingerprint>` split up; undefined when it is not of that form. */
export function parseEventId(id: string): { client: string; key: string; print: string } | undefined {
  const match = /^([^:#]+):(.+)#([A-Za-z0-9_-]{22})$/.exec(id);
  return match ? { client: match[1] ?? '', key: match[2] ?? '', print: match[3] ?? '' } : undefined;
}

function problemType(body: unknown): unknown {
  return typeof body === 'object' && body !== null ? (body as { type?: unknown }).type : undefined;
}

function describe(item: Item): string {
  return item.eventId ?? `(keyless) ${item.type === 'counter' ? `${item.name} by ${item.by}` : ''}`;
}

function show(answer: Answer): string {
  return JSON.stringify(answer.body) ?? '';
}

/** Statistics of a load that has not sent anything yet. */
export function emptyStats(): LoadStats {
  return {
    requests: { increment: 0, 'increment-batch': 0, activity: 0, 'activity-batch': 0, read: 0 },
    writes: { increment: 0, 'increment-batch': 0, activity: 0, 'activity-batch': 0 },
    keyless: { increment: 0, 'increment-batch': 0 },
    statuses: new Map(),
    outcomeUnknown: 0,
    modes: new Map(),
    duplicates: 0,
    itemsInFlight: 0,
    retriedWrites: 0,
    maxAttempts: 0,
    reads: new Map(),
    probes: {
      counters: 0,
      checks: 0,
      equal: 0,
      differedInFaults: 0,
      differed: 0,
      maxOver: 0,
      maxUnder: 0,
      unavailable: 0,
      unread: 0,
    },
  };
}
