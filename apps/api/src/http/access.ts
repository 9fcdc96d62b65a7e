import { createHash, timingSafeEqual } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { MetricsRegistry } from '@app/metrics';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Gauge } from 'prom-client';
import { OverloadedError, RateLimitedError, UnauthorizedError } from './api.error.js';
import { RateLimiter } from './rate-limiter.js';

/** The client of a request when authentication is off. */
export const PUBLIC_CLIENT = 'public';

const digest = (key: string) => createHash('sha256').update(key).digest();

/**
 * Who may call the API, how often, and how much at once:
 * - API keys from `API_KEYS` (`key:client` pairs), in `X-API-Key` or `Authorization: Bearer`, compared as SHA-256
 *   digests with timingSafeEqual, so response time says nothing about a key. No keys: every caller is `public`.
 * - A rate limit per client (API_RATE_LIMIT per API_RATE_LIMIT_WINDOW_MS, in this process): 429 with Retry-After.
 * - A bound on the writes in progress in this process (API_MAX_IN_FLIGHT, G6): 503 with Retry-After at once,
 *   instead of queueing in memory while Kafka or Postgres is slow.
 */
@Injectable()
export class ApiAccess {
  private readonly keys: { digest: Buffer; clientId: string }[];
  private readonly limiter: RateLimiter;
  private writes = 0;
  private bodyBytes = 0;
  /** What each request being received or handled holds of `bodyBytes`, given back once it is answered. */
  private readonly bodies = new WeakMap<object, number>();

  constructor(
    private readonly config: AppConfig,
    metrics: MetricsRegistry,
  ) {
    this.keys = [...config.api.keys].map(([key, clientId]) => ({ digest: digest(key), clientId }));
    this.limiter = new RateLimiter(config.api.rateLimit.limit, config.api.rateLimit.windowMs);
    const writes = () => this.writes;
    new Gauge({
      name: 'writebehind_writes_in_flight',
      help: 'Write requests in progress in this process (bounded by API_MAX_IN_FLIGHT).',
      registers: [metrics.registry],
      // Read at scrape time: nothing to do per request.
      collect() {
        this.set(writes());
      },
    });
    const bodyBytes = () => this.bodyBytes;
    new Gauge({
      name: 'writebehind_request_body_bytes_in_flight',
      help: 'Bytes of request bodies being received or handled in this process (bounded by API_MAX_BODY_BYTES_IN_FLIGHT).',
      registers: [metrics.registry],
      collect() {
        this.set(bodyBytes());
      },
    });
    new Gauge({
      name: 'writebehind_writes_in_flight_limit',
      help: 'Most write requests in progress at once in this process (API_MAX_IN_FLIGHT); past it, 503.',
      registers: [metrics.registry],
    }).set(config.api.maxInFlight);
  }

  /** The request's client, within its rate limit; throws 401 or 429. */
  admit(request: FastifyRequest): string {
    const clientId = this.authenticate(request);
    const waitSeconds = this.limiter.hit(clientId);
    if (waitSeconds !== undefined) throw new RateLimitedError(waitSeconds, this.config.api.rateLimit.limit);
    return clientId;
  }

  /** Runs a write within the in-flight bound (503 past it). */
  async write<T>(work: () => Promise<T>): Promise<T> {
    if (this.writes >= this.config.api.maxInFlight) {
      throw new OverloadedError(
        `${this.writes} writes are in progress in this process`,
        this.config.api.retryAfterSeconds,
      );
    }
    this.writes += 1;
    try {
      return await work();
    } finally {
      this.writes -= 1;
    }
  }

  /**
   * Holds the bytes of a request's body (its Content-Length, or the body limit when it has none) until it is answered,
   * and refuses it with 503 before the body is read when the bodies in flight would pass API_MAX_BODY_BYTES_IN_FLIGHT:
   * memory stays bounded by bytes, not only by the count of requests.
   */
  reserveBody(request: FastifyRequest): void {
    const length = request.headers['content-length'];
    const bytes =
      length !== undefined
        ? Number(length) || 0
        : request.headers['transfer-encoding'] !== undefined
          ? this.config.api.bodyLimitBytes
          : 0;
    if (bytes === 0) return;
    if (this.bodyBytes + bytes > this.config.api.maxBodyBytesInFlight) {
      throw new OverloadedError(
        `${this.bodyBytes} bytes of request bodies are in progress in this process`,
        this.config.api.retryAfterSeconds,
      );
    }
    this.bodyBytes += bytes;
    this.bodies.set(request, bytes);
  }

  /** Gives back what `reserveBody` held for a request (answered, or abandoned by its client). */
  releaseBody(request: FastifyRequest): void {
    const bytes = this.bodies.get(request);
    if (bytes === undefined) return;
    this.bodies.delete(request);
    this.bodyBytes -= bytes;
  }

  private authenticate(request: FastifyRequest): string {
    if (this.keys.length === 0) return PUBLIC_CLIENT;
    const presented = presentedKey(request);
    if (presented === undefined) throw new UnauthorizedError('send the API key in X-API-Key or Authorization: Bearer');
    const candidate = digest(presented);
    let clientId: string | undefined;
    for (const key of this.keys) if (timingSafeEqual(key.digest, candidate)) clientId = key.clientId;
    if (clientId === undefined) throw new UnauthorizedError('the API key is not valid');
    return clientId;
  }
}

function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers['x-api-key'];
  if (typeof header === 'string' && header.length > 0) return header;
  const authorization = request.headers.authorization;
  const match = authorization?.match(/^Bearer\s+(\S+)$/i);
  return match?.[1];
}

/** Sends a JSON body the caller serialized already (a compiled serializer, or a replayed answer). */
export function sendJson(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).header('content-type', 'application/json; charset=utf-8').send(body);
}
