import { Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import { Counter, Histogram } from 'prom-client';
import { MetricsRegistry } from './metrics.registry.js';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
/** Requests that matched no route (404s for any path): one label value, never the raw path. */
export const UNMATCHED_ROUTE = 'unmatched';

/**
 * HTTP requests and their latency, by route template (`/v1/counters/:name/increment`, never the raw path) and
 * status, for every app served by Fastify. The labels are bounded by the routes the app declares, the standard
 * methods and the status codes it answers, so `/metrics` stays small and cheap (siimon/prom-client#216).
 * The latency histogram has no status label: buckets times statuses would multiply the series for little.
 */
@Injectable()
export class HttpMetrics implements OnModuleInit {
  private readonly requests: Counter<'method' | 'route' | 'status'>;
  private readonly duration: Histogram<'method' | 'route'>;
  /**
   * The labelled children, made on first use per (method, route, status): `inc(labels)` and `observe(labels)` hash
   * their labels on every call, which cost the API more than its own metrics did. Bounded like the labels are.
   */
  private readonly children = new Map<string, { requests: { inc(): void }; duration: { observe(v: number): void } }>();

  constructor(
    metrics: MetricsRegistry,
    private readonly adapterHost: HttpAdapterHost,
  ) {
    const registers = [metrics.registry];
    this.requests = new Counter({
      name: 'writebehind_http_requests_total',
      help: 'HTTP requests answered, by method, route template and status code.',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.duration = new Histogram({
      name: 'writebehind_http_request_duration_seconds',
      help: 'Time from receiving an HTTP request to sending its answer, by method and route template.',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
  }

  /** Hooks into Fastify before the app listens (an in-process test context without HTTP has nothing to hook). */
  onModuleInit(): void {
    const adapter = this.adapterHost.httpAdapter as (typeof this.adapterHost)['httpAdapter'] | undefined;
    if (adapter?.getType() !== 'fastify') return;
    adapter.getInstance<FastifyInstance>().addHook('onResponse', (request, reply, done) => {
      this.observe(request.method, request.routeOptions.url, reply.statusCode, reply.elapsedTime / 1000);
      done();
    });
  }

  observe(method: string, route: string | undefined, status: number, seconds: number): void {
    const key = `${method} ${status} ${route ?? ''}`;
    let child = this.children.get(key);
    if (child === undefined) {
      const labels = { method: METHODS.has(method) ? method : 'OTHER', route: route ?? UNMATCHED_ROUTE };
      child = {
        requests: this.requests.labels({ ...labels, status: String(status) }),
        duration: this.duration.labels(labels),
      };
      this.children.set(key, child);
    }
    child.requests.inc();
    child.duration.observe(seconds);
  }
}
