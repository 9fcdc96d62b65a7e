import { Injectable } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { CounterView, type CounterWrite, type ViewClaim, type WriteManyOutcome } from '@app/counter-view';
import { Database, isPostgresUnavailable } from '@app/db';
import { counterBody, counterFingerprint, eventId } from '@app/events';
import { type HeldKey, IdempotencyService, type KeyState } from '@app/idempotency';
import { LogThrottle, type TraceContext, formatTraceparent } from '@app/platform';
import { CounterRepository, type CounterIncrement } from '@app/store';
import { PinoLogger } from 'nestjs-pino';
import { CounterRangeError, ReadUnavailableError } from '../http/api.error.js';
import { type Answer, answerHeld, statusOf } from '../ingest/answers.js';
import { ApiMetrics } from '../ingest/api.metrics.js';
import type { OutgoingMessage } from '../ingest/event-publisher.js';
import { requestKeys } from '../ingest/write-keys.js';
import { WritePath } from '../ingest/write-path.js';
import { type BatchItemAnswer, type IncrementItem, batchAnswer, incrementAnswer } from './counters.schemas.js';

/** One increment of a request, planned: its event id, and what its Idempotency-Key (if any) said. */
interface Planned {
  name: string;
  by: number;
  /** The key the event id is made of: the client's, or a new one. */
  key: string;
  print: string;
  eventId: string;
  /** The client's key, when it sent one. */
  clientKey: string | undefined;
  /** The key's record, when this request holds it. */
  held?: HeldKey | undefined;
  /** What the key said, when someone else holds it: the increment is not written. */
  state?: KeyState | undefined;
}

/**
 * Counter writes and reads. Write-behind (default): the Idempotency-Key is taken and the delta enters the Redis view
 * (`pending`) in one script, then the event is published; only Kafka's acknowledgement makes the write accepted.
 * When Kafka is unavailable the same events are written through (WritePath). A failed write takes its deltas back
 * and frees its keys.
 */
@Injectable()
export class CountersService {
  private readonly viewErrors = new LogThrottle();

  constructor(
    private readonly config: AppConfig,
    private readonly view: CounterView,
    private readonly idempotency: IdempotencyService,
    private readonly writes: WritePath,
    private readonly counters: CounterRepository,
    private readonly database: Database,
    private readonly metrics: ApiMetrics,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext('Counters');
  }

  /** One increment; its answer carries the value served right after it (null when Redis is down). */
  async increment(clientId: string, item: IncrementItem, trace: TraceContext): Promise<Answer> {
    const mode = this.config.api.writeMode.counters;
    const write = this.plan(clientId, item, requestKeys());
    const acceptedAt = Date.now();
    let value: number | null = null;
    let viewed: 'added' | 'failed' | 'no' = 'no';
    if (this.writes.behind(mode)) {
      let claim: ViewClaim | undefined;
      if (write.clientKey !== undefined && this.view.claimsWithWrites) {
        write.held = this.idempotency.hold(clientId, { key: write.clientKey, fingerprint: write.print });
        claim = { ...write.held, leaseMs: this.idempotency.leaseMs };
      } else {
        await this.idempotency.claimKeyed(clientId, [write]);
        if (write.state) return answerHeld(this.metrics, 'counter', write.state);
      }
      let outcome: CounterWrite | undefined;
      try {
        outcome = await this.view.write(write.name, { eventId: write.eventId, delta: write.by, acceptedAt }, claim);
      } catch (error) {
        viewed = 'failed';
        this.viewError(error);
      }
      if (outcome?.kind === 'held') {
        write.held = undefined;
        return answerHeld(this.metrics, 'counter', this.idempotency.state(outcome.record, write.print));
      }
      if (outcome?.kind === 'range') {
        await this.release([write]);
        throw new CounterRangeError(`${write.name} would pass the largest safe integer`);
      }
      if (outcome?.kind === 'added') {
        value = outcome.value;
        viewed = 'added';
      }
    } else {
      await this.idempotency.claimKeyed(clientId, [write]);
      if (write.state) return answerHeld(this.metrics, 'counter', write.state);
    }
    const done = await this.publish(mode, [write], acceptedAt, trace, viewed);
    const served = done.values?.get(write.name) ?? (done.mode === 'write-behind' ? value : null);
    const answer = {
      status: statusOf(done.mode),
      body: incrementAnswer({ name: write.name, value: served, eventId: write.eventId, mode: done.mode }),
    };
    this.metrics.idempotency('counter', 'accepted');
    await this.complete([write], answer);
    return answer;
  }

  /** A batch of increments; per item, accepted, or what its `id` said (duplicate, in flight, conflict). */
  async batch(clientId: string, items: IncrementItem[], trace: TraceContext): Promise<Answer> {
    const mode = this.config.api.writeMode.counters;
    const newKey = requestKeys();
    const planned = items.map((item) => this.plan(clientId, item, newKey));
    const acceptedAt = Date.now();
    let viewed: 'added' | 'failed' | 'no' = 'no';
    const behind = this.writes.behind(mode);
    const combined = behind && this.view.claimsWithWrites;
    if (!combined) await this.idempotency.claimKeyed(clientId, planned);
    if (behind) {
      const adding = planned.filter((p) => p.state === undefined);
      for (const p of combined ? adding : []) {
        if (p.clientKey !== undefined)
          p.held = this.idempotency.hold(clientId, { key: p.clientKey, fingerprint: p.print });
      }
      let outcome: WriteManyOutcome | undefined;
      try {
        outcome = await this.view.writeMany(
          adding.map((p) => ({
            name: p.name,
            entry: { eventId: p.eventId, delta: p.by, acceptedAt },
            claim: p.held && combined ? { ...p.held, leaseMs: this.idempotency.leaseMs } : undefined,
          })),
        );
      } catch (error) {
        viewed = 'failed';
        this.viewError(error);
      }
      if (outcome?.kind === 'range') {
        if (!combined) await this.release(planned);
        const index = planned.indexOf(adding[outcome.index] as Planned);
        throw new CounterRangeError(
          `increments.${index}: ${adding[outcome.index]?.name} would pass the largest safe integer`,
        );
      }
      if (outcome?.kind === 'done') {
        outcome.held.forEach((record, i) => {
          const p = adding[i];
          if (record === undefined || p === undefined) return;
          p.held = undefined;
          p.state = this.idempotency.state(record, p.print);
        });
        viewed = 'added';
      }
    }
    const fresh = planned.filter((p) => p.state === undefined);
    let modeUsed = mode;
    if (fresh.length > 0) modeUsed = (await this.publish(mode, fresh, acceptedAt, trace, viewed)).mode;
    const results = planned.map((p): BatchItemAnswer => {
      if (p.state === undefined) return { name: p.name, eventId: p.eventId, status: 'accepted', mode: modeUsed };
      switch (p.state.kind) {
        case 'replay': {
          const first = JSON.parse(p.state.body) as { name: string; eventId: string; mode: string };
          return { name: first.name, eventId: first.eventId, status: 'duplicate', mode: first.mode };
        }
        case 'in-flight':
          return { name: p.name, eventId: p.eventId, status: 'in-flight' };
        case 'mismatch':
          return { name: p.name, eventId: p.eventId, status: 'conflict' };
      }
    });
    this.countKeys(results);
    await this.complete(fresh, {
      status: statusOf(modeUsed),
      body: (p) => incrementAnswer({ name: p.name, value: null, eventId: p.eventId, mode: modeUsed }),
    });
    return {
      status: statusOf(modeUsed),
      body: batchAnswer({ accepted: fresh.length, mode: modeUsed, results }),
    };
  }

  /**
   * The served value: the Redis view (read-your-writes); Postgres alone when Redis is unreachable. When Postgres
   * cannot serve (down, or its pool busy past the wait, as under overload) the read is refused with 503: a view miss
   * that failed on Postgres is not sent to Postgres a second time.
   */
  async value(name: string): Promise<number> {
    try {
      const { value, hit, filled } = await this.view.lookup(name);
      this.metrics.cacheLookup('counter-view', hit ? 'hit' : 'miss', filled);
      return value;
    } catch (error) {
      this.metrics.cacheLookup('counter-view', 'error');
      if (isPostgresUnavailable(error)) throw this.readUnavailable(error);
      this.viewErrors.run((suppressed) =>
        this.logger.warn({ err: error, suppressed }, 'counter view unavailable: reading Postgres'),
      );
      try {
        return (await this.counters.read(name)).value;
      } catch (readError) {
        if (isPostgresUnavailable(readError)) throw this.readUnavailable(readError);
        throw readError;
      }
    }
  }

  private plan(clientId: string, item: IncrementItem, newKey: () => string): Planned {
    const print = counterFingerprint(item.name, item.by);
    const key = item.id ?? newKey();
    return { name: item.name, by: item.by, key, print, eventId: eventId(clientId, key, print), clientKey: item.id };
  }

  /**
   * Sends the increments down the write path; on failure takes their deltas back from the view and frees their
   * keys. A view update that failed (a timeout, say) may still be carried out by a server that was only slow, after
   * the consumer's own reconcile: once Kafka has the events, it is taken back too, without waiting.
   */
  private async publish(
    mode: 'write-behind' | 'write-through',
    planned: Planned[],
    acceptedAt: number,
    trace: TraceContext,
    viewed: 'added' | 'failed' | 'no',
  ): Promise<{ mode: 'write-behind' | 'write-through'; values?: Map<string, number> }> {
    const traceparent = formatTraceparent(trace);
    const increments = planned.map((p): CounterIncrement => ({ eventId: p.eventId, name: p.name, by: p.by }));
    const takeBack = () => this.view.removePendingMany(increments).catch((error: unknown) => this.viewError(error));
    try {
      const done = await this.writes.write(mode, {
        entity: 'counter',
        messages: planned.map((p) => this.message(p, acceptedAt, traceparent)),
        writeThrough: () => this.writeThrough(increments),
        retry:
          planned.length === 1 && planned[0]
            ? { idempotencyKey: planned[0].key, eventId: planned[0].eventId }
            : { items: planned.map((p) => ({ id: p.key, eventId: p.eventId })) },
      });
      if (viewed === 'failed' && done.mode === 'write-behind') void takeBack();
      return done.mode === 'write-behind' ? done : { mode: done.mode, values: done.result };
    } catch (error) {
      if (viewed === 'added') await takeBack();
      await this.release(planned);
      throw error;
    }
  }

  /** Ledger and upsert in one transaction, then the view reconciled; the served value of each counter. */
  private async writeThrough(increments: CounterIncrement[]): Promise<Map<string, number>> {
    let applied;
    try {
      applied = await this.database.db.tx((t) => this.counters.applyIncrements(t, increments, 'write-through'));
    } catch (error) {
      // int8: a value past 2^53 - 1, read back inside the transaction, which then rolled back.
      if (error instanceof RangeError) throw new CounterRangeError('a counter would pass the largest safe integer');
      throw error;
    }
    // Postgres' own values, replaced by the view's once it is reconciled (they add others' pending deltas).
    const values = new Map(applied.changed.map((c) => [c.name, c.value]));
    try {
      for (const [name, value] of await this.view.reconcile(increments, applied.changed)) values.set(name, value);
    } catch (error) {
      this.viewError(error);
    }
    return values;
  }

  private message(p: Planned, acceptedAt: number, traceparent: string): OutgoingMessage {
    const body = counterBody(p.eventId, p.name, acceptedAt, p.by);
    return { topic: this.config.kafka.topics.counters, key: p.name, body, traceparent };
  }

  /** Stores the answers of the writes that hold their key, for their repeats. */
  private async complete(
    planned: Planned[],
    answer: { status: number; body: string | ((p: Planned) => string) },
  ): Promise<void> {
    const { body } = answer;
    const held = planned.filter((p) => p.held !== undefined);
    if (held.length === 0) return;
    await this.idempotency.complete(
      held.map((p) => ({
        held: p.held as HeldKey,
        fingerprint: p.print,
        status: answer.status,
        body: typeof body === 'string' ? body : body(p),
      })),
    );
  }

  private async release(planned: Planned[]): Promise<void> {
    const held = planned.flatMap((p) => (p.held ? [p.held] : []));
    if (held.length > 0) await this.idempotency.release(held);
  }

  private countKeys(results: BatchItemAnswer[]): void {
    const counts = { accepted: 0, replayed: 0, in_flight: 0, conflict: 0 };
    for (const r of results) {
      if (r.status === 'accepted') counts.accepted += 1;
      else if (r.status === 'duplicate') counts.replayed += 1;
      else if (r.status === 'in-flight') counts.in_flight += 1;
      else counts.conflict += 1;
    }
    for (const [outcome, n] of Object.entries(counts)) {
      if (n > 0) this.metrics.idempotency('counter', outcome as keyof typeof counts, n);
    }
  }

  private viewError(error: unknown): void {
    this.metrics.cacheLookup('counter-view', 'error');
    this.viewErrors.run((suppressed) => this.logger.warn({ err: error, suppressed }, 'counter view unavailable'));
  }

  private readUnavailable(cause: unknown): ReadUnavailableError {
    return new ReadUnavailableError('Postgres cannot serve the read now', this.config.api.retryAfterSeconds, {
      cause,
    });
  }
}
