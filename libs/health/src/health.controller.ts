import { Controller, Get, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheck, HealthCheckService, type HealthCheckResult } from '@nestjs/terminus';
import { Lifecycle } from '@app/platform';
import { ReadinessPolicy } from './readiness.policy.js';

@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly readiness: ReadinessPolicy,
    private readonly lifecycle: Lifecycle,
  ) {}

  /** The process is up and its event loop answers. Dependencies never fail liveness: a restart cures none. */
  @Get('live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** Ready to take traffic: the app's readiness checks pass and the process is not draining. */
  @Get('ready')
  @HealthCheck()
  async ready(): Promise<HealthCheckResult> {
    if (this.lifecycle.isDraining) throw new ServiceUnavailableException({ status: 'error', reason: 'draining' });
    return this.health.check(this.readiness.checks());
  }
}
