import { type CallHandler, type ExecutionContext, Injectable, type NestInterceptor } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { type Observable, finalize } from 'rxjs';
import { OverloadedError } from '../http/api.error.js';
import { ApiMetrics } from './api.metrics.js';

/**
 * Bounds the write requests in progress in this process (G6): past API_MAX_IN_FLIGHT a write is answered
 * 503 with Retry-After at once, instead of queueing in memory while Kafka or Postgres is slow.
 */
@Injectable()
export class InFlightInterceptor implements NestInterceptor {
  private inFlight = 0;

  constructor(
    private readonly config: AppConfig,
    private readonly metrics: ApiMetrics,
  ) {}

  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (this.inFlight >= this.config.api.maxInFlight) {
      throw new OverloadedError(
        `${this.inFlight} writes are in progress in this process`,
        this.config.api.retryAfterSeconds,
      );
    }
    this.inFlight += 1;
    this.metrics.writesInFlight.set(this.inFlight);
    return next.handle().pipe(
      finalize(() => {
        this.inFlight -= 1;
        this.metrics.writesInFlight.set(this.inFlight);
      }),
    );
  }
}
