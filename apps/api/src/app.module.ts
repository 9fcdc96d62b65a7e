import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { AppConfig } from '@app/config';
import { CoreModule } from '@app/core';
import { CounterViewModule } from '@app/counter-view';
import { IdempotencyModule } from '@app/idempotency';
import { LagModule } from '@app/lag';
import { StoreModule } from '@app/store';
import { ActivitiesRoutes } from './activities/activities.routes.js';
import { ActivitiesService } from './activities/activities.service.js';
import { CountersRoutes } from './counters/counters.routes.js';
import { CountersService } from './counters/counters.service.js';
import { ApiAccess } from './http/access.js';
import { ProblemFilter } from './http/problem.filter.js';
import { ApiMetrics } from './ingest/api.metrics.js';
import { ApiReadiness } from './ingest/api-readiness.js';
import { EventPublisher } from './ingest/event-publisher.js';
import { WritePath } from './ingest/write-path.js';
import { LagExporter } from './lag/lag-exporter.service.js';
import { LagMetrics } from './lag/lag.metrics.js';

/**
 * The API. Its routes are plain Fastify routes (CountersRoutes, ActivitiesRoutes: see http/routes.ts for why); Nest
 * wires their services and serves `/health/*` and `/metrics` (CoreModule), whose errors ProblemFilter answers.
 */
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
      ],
      providers: [
        ApiMetrics,
        ApiAccess,
        EventPublisher,
        WritePath,
        CountersService,
        CountersRoutes,
        ActivitiesService,
        ActivitiesRoutes,
        LagMetrics,
        LagExporter,
        { provide: APP_FILTER, useClass: ProblemFilter },
      ],
    };
  }
}
