import { Controller, Get, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheck, HealthCheckService, type HealthCheckResult } from '@nestjs/terminus';
import { Lifecycle } from '@app/platform';
import { DependenciesHealth } from './dependencies.health.js';

@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly dependencies: DependenciesHealth,
    private readonly lifecycle: Lifecycle,
  ) {}

  /** The process is up and its event loop answers. Dependencies never fail liveness: a restart cures none. */
  @Get('live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** Ready to take traffic: Postgres, Redis and Kafka answer, and the process is not draining. */
  @Get('ready')
  @HealthCheck()
  async ready(): Promise<HealthCheckResult> {
    if (this.lifecycle.isDraining) throw new ServiceUnavailableException({ status: 'error', reason: 'draining' });
    return this.health.check([
      () => this.dependencies.postgres(),
      () => this.dependencies.redis(),
      () => this.dependencies.kafka(),
    ]);
  }
}
