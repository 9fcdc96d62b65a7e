import { Injectable } from '@nestjs/common';
import type { HealthIndicatorFunction } from '@nestjs/terminus';
import { DependenciesHealth } from './dependencies.health.js';

/**
 * What "ready to take traffic" means for an app: the checks `/health/ready` runs. An app provides its own
 * (through `CoreModule.forRoot(..., { readiness })`) when it can serve with a dependency down, or has more to
 * check than its connections.
 */
export abstract class ReadinessPolicy {
  abstract checks(): HealthIndicatorFunction[];
}

/** The default: Postgres, Redis and Kafka all answer. */
@Injectable()
export class AllDependenciesReady extends ReadinessPolicy {
  constructor(private readonly dependencies: DependenciesHealth) {
    super();
  }

  checks(): HealthIndicatorFunction[] {
    return [() => this.dependencies.postgres(), () => this.dependencies.redis(), () => this.dependencies.kafka()];
  }
}
