import { type DynamicModule, Module, type Type } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { DependenciesHealth } from './dependencies.health.js';
import { HealthController } from './health.controller.js';
import { ReadinessMetrics } from './readiness.metrics.js';
import { AllDependenciesReady, ReadinessPolicy } from './readiness.policy.js';

/** `/health/live` and `/health/ready`. Needs the db, redis, kafka and platform modules in the app. */
@Module({})
export class HealthModule {
  /**
   * `readiness`: the app's policy (default: Postgres, Redis and Kafka answer). `imports`: modules the
   * policy's own dependencies come from.
   */
  static forRoot(
    readiness: Type<ReadinessPolicy> = AllDependenciesReady,
    imports: DynamicModule['imports'] = [],
  ): DynamicModule {
    return {
      module: HealthModule,
      imports: [TerminusModule.forRoot({ logger: false }), ...imports],
      controllers: [HealthController],
      providers: [DependenciesHealth, ReadinessMetrics, { provide: ReadinessPolicy, useClass: readiness }],
      exports: [DependenciesHealth],
    };
  }
}
