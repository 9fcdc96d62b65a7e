import { Injectable } from '@nestjs/common';
import { MetricsRegistry } from '@app/metrics';
import { Counter, Gauge, Histogram } from 'prom-client';

/** The API's own metrics (names per Prometheus conventions; labels bounded to a handful of values). */
@Injectable()
export class ApiMetrics {
  readonly eventsAccepted: Counter<'entity' | 'mode'>;
  readonly writesRejected: Counter<'entity' | 'reason'>;
  readonly breakerState: Gauge;
  readonly produceBatchEvents: Histogram;
  readonly produceSeconds: Histogram<'outcome'>;
  readonly produceQueued: Gauge;
  readonly writesInFlight: Gauge;
  readonly cacheRequests: Counter<'cache' | 'result'>;

  constructor(metrics: MetricsRegistry) {
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
    this.writesInFlight = new Gauge({
      name: 'writebehind_writes_in_flight',
      help: 'Write requests in progress in this process (bounded by API_MAX_IN_FLIGHT).',
      registers,
    });
    this.cacheRequests = new Counter({
      name: 'writebehind_cache_requests_total',
      help: 'Cache lookups by cache and result (hit, miss, error).',
      labelNames: ['cache', 'result'],
      registers,
    });
  }
}
