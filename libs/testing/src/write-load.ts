import { setTimeout as sleep } from 'node:timers/promises';
import { uniqueName } from './env.js';

export interface WriteLoadOptions {
  /**
   * API base URL, e.g. http://127.0.0.1:3000, or several: each client starts on one and moves to the next
   * when a request fails (an API process that died), as a client behind a load balancer would.
   */
  baseUrl: string | string[];
  /** Concurrent clients, each sending one request at a time. */
  clients?: number;
  /** Counters written to (names `<prefix>-<i>`). */
  counters?: number;
  prefix?: string;
  /** Headers for every request (an API key). */
  headers?: Record<string, string>;
}

export interface LoadStats {
  /** 2xx answers by status. */
  accepted: Map<number, number>;
  /** Non-2xx answers and transport errors, by status (0 for a transport error). */
  refused: Map<number, number>;
  modes: Map<string, number>;
}

/**
 * Closed-loop write load against a real API, with the oracle of docs/architecture.md section 3: the sum, per counter, of
 * the deltas of every increment the API acknowledged (2xx). Each request carries a unique Idempotency-Key.
 * A request that was not acknowledged is retried with the SAME key until it is, or until `stop()`, as a
 * careful client would: so a write that the API applied but could not acknowledge is counted exactly once.
 */
export class WriteLoad {
  readonly oracle = new Map<string, number>();
  readonly ackedIds = new Set<string>();
  readonly stats: LoadStats = { accepted: new Map(), refused: new Map(), modes: new Map() };
  private running = true;
  private readonly workers: Promise<void>[];
  private readonly names: string[];
  private readonly run = uniqueName('load');
  private listeners: (() => void)[] = [];

  constructor(private readonly options: WriteLoadOptions) {
    const counters = options.counters ?? 10;
    this.names = Array.from({ length: counters }, (_, i) => `${options.prefix ?? 'load'}-${i}`);
    this.workers = Array.from({ length: options.clients ?? 10 }, (_, i) => this.worker(i));
  }

  /** Total acknowledged writes so far. */
  get acked(): number {
    return this.ackedIds.size;
  }

  count(mode: string): number {
    return this.stats.modes.get(mode) ?? 0;
  }

  /** Resolves once `predicate` holds after some acknowledged write. */
  until(predicate: (load: WriteLoad) => boolean): Promise<void> {
    if (predicate(this)) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (!predicate(this)) return;
        this.listeners = this.listeners.filter((l) => l !== check);
        resolve();
      };
      this.listeners.push(check);
    });
  }

  /**
   * Stops starting new writes and waits for the outstanding ones: each is retried with its key until it is
   * acknowledged (a write may have been applied although its answer was lost, so giving up on it would make
   * the oracle wrong). Call it with the services up. A write still unacknowledged after `graceMs` is
   * abandoned and counted in `abandoned`; the oracle is exact only when that is 0.
   */
  async stop(graceMs = 120_000): Promise<void> {
    this.running = false;
    this.deadline = Date.now() + graceMs;
    await Promise.all(this.workers);
  }

  /** Writes given up at stop() without an acknowledgement: possibly applied, not in the oracle. */
  abandoned = 0;
  private deadline = Number.POSITIVE_INFINITY;

  private async worker(index: number): Promise<void> {
    const urls = Array.isArray(this.options.baseUrl) ? this.options.baseUrl : [this.options.baseUrl];
    let server = index % urls.length;
    let n = 0;
    while (this.running) {
      const name = this.names[(index + n) % this.names.length] ?? 'load';
      const by = 1 + ((index * 31 + n) % 7);
      const key = `${this.run}-${index}-${n}`;
      n += 1;
      // Retry the same key until acknowledged: an unacknowledged write may still have been applied.
      for (let attempt = 0; ; attempt++) {
        const outcome = await this.send(urls[server] ?? '', name, by, key);
        if (outcome.ok) {
          this.acknowledge(name, by, outcome.eventId, outcome.mode, outcome.status);
          break;
        }
        this.stats.refused.set(outcome.status, (this.stats.refused.get(outcome.status) ?? 0) + 1);
        if (outcome.status === 0) server = (server + 1) % urls.length;
        if (!this.running && Date.now() > this.deadline) {
          this.abandoned += 1;
          break;
        }
        await sleep(Math.min(50 * 2 ** attempt, 500));
      }
    }
  }

  private async send(
    baseUrl: string,
    name: string,
    by: number,
    key: string,
  ): Promise<{ ok: true; status: number; eventId: string; mode: string } | { ok: false; status: number }> {
    try {
      const response = await fetch(`${baseUrl}/v1/counters/${name}/increment`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key, ...this.options.headers },
        body: JSON.stringify({ by }),
        signal: AbortSignal.timeout(30_000),
      });
      const body = (await response.json()) as { eventId?: string; mode?: string };
      if (response.status >= 200 && response.status < 300 && body.eventId !== undefined) {
        return { ok: true, status: response.status, eventId: body.eventId, mode: body.mode ?? 'unknown' };
      }
      return { ok: false, status: response.status };
    } catch {
      return { ok: false, status: 0 };
    }
  }

  private acknowledge(name: string, by: number, eventId: string, mode: string, status: number): void {
    // A replayed acknowledgement (same key) carries the same event id: counted once.
    if (!this.ackedIds.has(eventId)) {
      this.ackedIds.add(eventId);
      this.oracle.set(name, (this.oracle.get(name) ?? 0) + by);
    }
    this.stats.accepted.set(status, (this.stats.accepted.get(status) ?? 0) + 1);
    this.stats.modes.set(mode, (this.stats.modes.get(mode) ?? 0) + 1);
    for (const listener of [...this.listeners]) listener();
  }
}
