import { type DynamicModule, Module, type Type } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { DependenciesHealth } from './dependencies.health.js';
import { HealthController } from './health.controller.js';
import { ReadinessMetrics } from './readiness.metrics.js';
import { AllDependenciesReady, ReadinessPolicy } from './readiness.policy.js';

export interface HealthModuleOptions {
  /** The app's policy (default: Postgres, Redis and Kafka answer). */
  readiness?: Type<ReadinessPolicy>;
  /** Modules the policy's own dependencies come from. */
  imports?: DynamicModule['imports'];
  /**
   * Serve `/health/*` on the app's HTTP server (default). False when another listener serves them (an admin port):
   * the controller is then only a provider, exported for that listener to call.
   */
  routes?: boolean;
}

/** `/health/live` and `/health/ready`. Needs the db, redis, kafka and platform modules in the app. */
@Module({})
export class HealthModule {
  static forRoot(options: HealthModuleOptions = {}): DynamicModule {
    const routes = options.routes ?? true;
    return {
      module: HealthModule,
      imports: [TerminusModule.forRoot({ logger: false }), ...(options.imports ?? [])],
      controllers: routes ? [HealthController] : [],
      providers: [
        DependenciesHealth,
        ReadinessMetrics,
        { provide: ReadinessPolicy, useClass: options.readiness ?? AllDependenciesReady },
        ...(routes ? [] : [HealthController]),
      ],
      exports: routes ? [DependenciesHealth] : [DependenciesHealth, HealthController],
    };
  }
}
