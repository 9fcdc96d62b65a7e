import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import { AppConfig } from '@app/config';
import { CoreModule } from '@app/core';
import { CounterViewModule } from '@app/counter-view';
import { IdempotencyModule } from '@app/idempotency';
import { LagModule } from '@app/lag';
import { StoreModule } from '@app/store';
import type { FastifyRequest } from 'fastify';
import { ActivitiesController } from './activities/activities.controller.js';
import { ActivitiesService } from './activities/activities.service.js';
import { ApiKeyGuard } from './auth/api-key.guard.js';
import { PUBLIC_CLIENT } from './auth/client.js';
import { CountersController } from './counters/counters.controller.js';
import { CountersService } from './counters/counters.service.js';
import { ProblemFilter } from './http/problem.filter.js';
import { RateLimitStorage } from './http/rate-limit.storage.js';
import { ApiMetrics } from './ingest/api.metrics.js';
import { ApiReadiness } from './ingest/api-readiness.js';
import { EventPublisher } from './ingest/event-publisher.js';
import { InFlightInterceptor } from './ingest/in-flight.interceptor.js';
import { LagExporter } from './lag/lag-exporter.service.js';
import { LagMetrics } from './lag/lag.metrics.js';

@Module({})
export class AppModule {
  static forRoot(config?: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        CoreModule.forRoot('api', { config, readiness: ApiReadiness }),
        StoreModule,
        CounterViewModule,
        IdempotencyModule,
        LagModule,
        ThrottlerModule.forRootAsync({
          inject: [AppConfig],
          useFactory: (c: AppConfig) => ({
            throttlers: [{ ttl: c.api.rateLimit.windowMs, limit: c.api.rateLimit.limit }],
            // The library's storage, with the same answers, at O(1) per request instead of O(hits in the window).
            storage: new RateLimitStorage(),
            // The library's key (route, throttler, client) without the SHA-256 it puts over it on every request: the
            // key lives only in this process's memory, so nothing needs it short or opaque.
            generateKey: (context, tracker, name) =>
              `${context.getClass().name}-${context.getHandler().name}-${name}-${tracker}`,
            // Per client (set by ApiKeyGuard, which runs first), not per IP: clients sit behind proxies.
            getTracker: (request: Record<string, unknown>) =>
              (request as unknown as FastifyRequest).clientId ?? PUBLIC_CLIENT,
          }),
        }),
      ],
      controllers: [CountersController, ActivitiesController],
      providers: [
        ApiMetrics,
        EventPublisher,
        CountersService,
        ActivitiesService,
        ApiKeyGuard,
        InFlightInterceptor,
        LagMetrics,
        LagExporter,
        { provide: APP_FILTER, useClass: ProblemFilter },
      ],
    };
  }
}
