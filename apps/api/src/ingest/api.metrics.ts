import { Injectable } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { MetricsRegistry } from '@app/metrics';
import { Counter, Gauge, Histogram } from 'prom-client';

export type Entity = 'counter' | 'activity';
export type CacheName = 'counter-view' | 'feed';

const ENTITIES = ['counter', 'activity'] as const;
const MODES = ['write-behind', 'write-through'] as const;
const REJECTIONS = ['overloaded', 'unavailable'] as const;
const CACHES = ['counter-view', 'feed'] as const;
const CACHE_RESULTS = ['hit', 'miss', 'error'] as const;
/** What happened to a write under its idempotency key (`accepted` also counts writes sent without a key). */
const IDEMPOTENCY_OUTCOMES = ['accepted', 'replayed', 'in_flight', 'conflict'] as const;
export type IdempotencyOutcome = (typeof IDEMPOTENCY_OUTCOMES)[number];

type Inc = { inc(value?: number): void };

/** One labelled child per combination, made once: `counter.inc(labels)` hashes its labels on every call. */
function children<A extends string, B extends string>(
  first: readonly A[],
  second: readonly B[],
  child: (a: A, b: B) => Inc,
): Record<A, Record<B, Inc>> {
  const out = {} as Record<A, Record<B, Inc>>;
  for (const a of first) {
    out[a] = {} as Record<B, Inc>;
    for (const b of second) {
      const made = child(a, b);
      made.inc(0);
      out[a][b] = made;
    }
  }
  return out;
}

/**
 * The API's own metrics (docs/metrics.md). Labels come from fixed sets, and every combination is created at 0 at
 * boot: a counter that appears only at its first increment is missed by `increase()` and leaves alert and panel
 * queries empty until the first failure, which is when they matter.
 */
@Injectable()
export class ApiMetrics {
  private readonly acceptedBy: Record<Entity, Record<(typeof MODES)[number], Inc>>;
  private readonly rejectedBy: Record<Entity, Record<(typeof REJECTIONS)[number], Inc>>;
  private readonly idempotentBy: Record<Entity, Record<IdempotencyOutcome, Inc>>;
  private readonly lookups: Record<CacheName, Record<(typeof CACHE_RESULTS)[number], Inc>>;
  private readonly fills: Record<CacheName, Inc>;
  readonly breakerState: Gauge;
  readonly produceBatchEvents: Histogram;
  readonly produceSeconds: Histogram<'outcome'>;
  /** Where the produce queue gauge reads its value at scrape time. */
  readonly produceQueued: (read: () => number) => void;

  constructor(metrics: MetricsRegistry, config: AppConfig) {
    const registers = [metrics.registry];
    const eventsAccepted = new Counter({
      name: 'writebehind_events_accepted_total',
      help: 'Events acknowledged to clients, by entity and write mode (write-behind: in Kafka; write-through: in Postgres).',
      labelNames: ['entity', 'mode'],
      registers,
    });
    const writesRejected = new Counter({
      name: 'writebehind_writes_rejected_total',
      help: 'Writes answered 503 (overloaded, or neither Kafka nor Postgres took them).',
      labelNames: ['entity', 'reason'],
      registers,
    });
    const idempotentWrites = new Counter({
      name: 'writebehind_idempotent_writes_total',
      help: 'Writes by idempotency outcome: accepted (new), replayed (same key and body: first answer returned), conflict (same key, other body: 422), in_flight (same key still running: 409).',
      labelNames: ['entity', 'outcome'],
      registers,
    });
    this.breakerState = new Gauge({
      name: 'writebehind_kafka_breaker_state',
      help: 'Kafka circuit breaker: 0 closed (write-behind), 1 half-open (trying Kafka), 2 open (write-through fallback).',
      registers,
    });
    this.produceBatchEvents = new Histogram({
      name: 'writebehind_produce_batch_events',
      help: 'Events per Kafka produce request (micro-batches across HTTP requests).',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
      registers,
    });
    this.produceSeconds = new Histogram({
      name: 'writebehind_produce_duration_seconds',
      help: 'Duration of Kafka produce requests (acks=all), by outcome.',
      labelNames: ['outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    let queued = () => 0;
    new Gauge({
      name: 'writebehind_produce_queued_events',
      help: 'Events waiting for a Kafka produce request.',
      registers,
      // Read at scrape time: nothing to do per request.
      collect() {
        this.set(queued());
      },
    });
    this.produceQueued = (read) => (queued = read);
    new Gauge({
      name: 'writebehind_produce_queued_events_limit',
      help: 'Most events that may wait for Kafka in this process (API_PRODUCE_MAX_QUEUED_EVENTS); past it, 503.',
      registers,
    }).set(config.api.produce.maxQueuedEvents);
    const cacheRequests = new Counter({
      name: 'writebehind_cache_requests_total',
      help: 'Cache lookups by cache (counter-view, feed) and result (hit, miss, error).',
      labelNames: ['cache', 'result'],
      registers,
    });
    const cacheFills = new Counter({
      name: 'writebehind_cache_fills_total',
      help: 'Cache refills from Postgres after a miss (concurrent misses of one key share one fill).',
      labelNames: ['cache'],
      registers,
    });

    this.acceptedBy = children(ENTITIES, MODES, (entity, mode) => eventsAccepted.labels(entity, mode));
    this.rejectedBy = children(ENTITIES, REJECTIONS, (entity, reason) => writesRejected.labels(entity, reason));
    this.idempotentBy = children(ENTITIES, IDEMPOTENCY_OUTCOMES, (entity, o) => idempotentWrites.labels(entity, o));
    this.lookups = children(CACHES, CACHE_RESULTS, (cache, result) => cacheRequests.labels(cache, result));
    this.fills = { 'counter-view': cacheFills.labels('counter-view'), feed: cacheFills.labels('feed') };
    for (const fill of Object.values(this.fills)) fill.inc(0);
  }

  accepted(entity: Entity, mode: (typeof MODES)[number], events: number): void {
    this.acceptedBy[entity][mode].inc(events);
  }

  rejected(entity: Entity, reason: (typeof REJECTIONS)[number], events: number): void {
    this.rejectedBy[entity][reason].inc(events);
  }

  /** Counts writes by idempotency outcome. */
  idempotency(entity: Entity, outcome: IdempotencyOutcome, writes = 1): void {
    this.idempotentBy[entity][outcome].inc(writes);
  }

  cacheLookup(cache: CacheName, result: 'hit' | 'miss' | 'error', filled = false): void {
    this.lookups[cache][result].inc();
    if (filled) this.fills[cache].inc();
  }

  cacheFilled(cache: CacheName): void {
    this.fills[cache].inc();
  }
}
