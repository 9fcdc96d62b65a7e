import { Injectable } from '@nestjs/common';
import { AppConfig } from '@app/config';
import type { WriteAnswer } from '@app/idempotency';
import { MetricsRegistry } from '@app/metrics';
import { Counter, Gauge, Histogram } from 'prom-client';

export type Entity = 'counter' | 'activity';
export type CacheName = 'counter-view' | 'feed';

const ENTITIES: readonly Entity[] = ['counter', 'activity'];
const MODES = ['write-behind', 'write-through'] as const;
const REJECTIONS = ['overloaded', 'unavailable'] as const;
const CACHES: readonly CacheName[] = ['counter-view', 'feed'];
const CACHE_RESULTS = ['hit', 'miss', 'error'] as const;
/** What happened to a write under its idempotency key (`accepted` also counts writes sent without a key). */
const IDEMPOTENCY_OUTCOMES = {
  accepted: 'accepted',
  duplicate: 'replayed',
  'in-flight': 'in_flight',
  conflict: 'conflict',
} as const;

/**
 * The API's own metrics (docs/metrics.md). Labels come from fixed sets, and every combination is created at 0 at
 * boot: a counter that appears only at its first increment is missed by `increase()` and leaves alert and panel
 * queries empty until the first failure, which is when they matter.
 */
@Injectable()
export class ApiMetrics {
  readonly eventsAccepted: Counter<'entity' | 'mode'>;
  readonly writesRejected: Counter<'entity' | 'reason'>;
  readonly idempotentWrites: Counter<'entity' | 'outcome'>;
  readonly breakerState: Gauge;
  readonly produceBatchEvents: Histogram;
  readonly produceSeconds: Histogram<'outcome'>;
  readonly produceQueued: Gauge;
  readonly writesInFlight: Gauge;
  readonly cacheRequests: Counter<'cache' | 'result'>;
  readonly cacheFills: Counter<'cache'>;

  constructor(metrics: MetricsRegistry, config: AppConfig) {
    const registers = [metrics.registry];
    this.eventsAccepted = new Counter({
      name: 'writebehind_events_accepted_total',
      help: 'Events acknowledged to clients, by entity and write mode (write-behind: in Kafka; write-through: in Postgres).',
      labelNames: ['entity', 'mode'],
      registers,
    });
    this.writesRejected = new Counter({
      name: 'writebehind_writes_rejected_total',
      help: 'Writes answered 503 (overloaded, or neither Kafka nor Postgres took them).',
      labelNames: ['entity', 'reason'],
      registers,
    });
    this.idempotentWrites = new Counter({
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
    this.produceQueued = new Gauge({
      name: 'writebehind_produce_queued_events',
      help: 'Events waiting for a Kafka produce request.',
      registers,
    });
    new Gauge({
      name: 'writebehind_produce_queued_events_limit',
      help: 'Most events that may wait for Kafka in this process (API_PRODUCE_MAX_QUEUED_EVENTS); past it, 503.',
      registers,
    }).set(config.api.produce.maxQueuedEvents);
    this.writesInFlight = new Gauge({
      name: 'writebehind_writes_in_flight',
      help: 'Write requests in progress in this process (bounded by API_MAX_IN_FLIGHT).',
      registers,
    });
    new Gauge({
      name: 'writebehind_writes_in_flight_limit',
      help: 'Most write requests in progress at once in this process (API_MAX_IN_FLIGHT); past it, 503.',
      registers,
    }).set(config.api.maxInFlight);
    this.cacheRequests = new Counter({
      name: 'writebehind_cache_requests_total',
      help: 'Cache lookups by cache (counter-view, feed) and result (hit, miss, error).',
      labelNames: ['cache', 'result'],
      registers,
    });
    this.cacheFills = new Counter({
      name: 'writebehind_cache_fills_total',
      help: 'Cache refills from Postgres after a miss (concurrent misses of one key share one fill).',
      labelNames: ['cache'],
      registers,
    });

    for (const entity of ENTITIES) {
      for (const mode of MODES) this.eventsAccepted.inc({ entity, mode }, 0);
      for (const reason of REJECTIONS) this.writesRejected.inc({ entity, reason }, 0);
      for (const outcome of Object.values(IDEMPOTENCY_OUTCOMES)) this.idempotentWrites.inc({ entity, outcome }, 0);
    }
    for (const cache of CACHES) {
      for (const result of CACHE_RESULTS) this.cacheRequests.inc({ cache, result }, 0);
      this.cacheFills.inc({ cache }, 0);
    }
    this.writesInFlight.set(0);
    this.produceQueued.set(0);
  }

  /** Counts the answers of one write request by idempotency outcome. */
  idempotency(entity: Entity, answers: readonly WriteAnswer<unknown>[]): void {
    const counts = new Map<string, number>();
    for (const answer of answers) {
      const outcome = IDEMPOTENCY_OUTCOMES[answer.status];
      counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
    }
    for (const [outcome, n] of counts) this.idempotentWrites.inc({ entity, outcome }, n);
  }

  cacheLookup(cache: CacheName, result: 'hit' | 'miss' | 'error', filled = false): void {
    this.cacheRequests.inc({ cache, result });
    if (filled) this.cacheFills.inc({ cache });
  }
}
