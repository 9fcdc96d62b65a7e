import { Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorFunction } from '@nestjs/terminus';
import { DependenciesHealth, ReadinessPolicy } from '@app/health';

/**
 * The API takes writes while Kafka OR Postgres answers (write-behind, or its write-through fallback), and
 * serves reads while Redis OR Postgres answers. Readiness fails only when one of those pairs is down
 * entirely, so a Kafka outage never takes the API out of the load balancer: that is what the fallback is for.
 */
@Injectable()
export class ApiReadiness extends ReadinessPolicy {
  constructor(
    private readonly dependencies: DependenciesHealth,
    private readonly indicators: HealthIndicatorService,
  ) {
    super();
  }

  checks(): HealthIndicatorFunction[] {
    return [() => this.either('writes', 'kafka', 'postgres'), () => this.either('reads', 'redis', 'postgres')];
  }

  private async either(key: string, first: 'kafka' | 'redis', second: 'postgres') {
    const results = await Promise.all([this.dependencies[first](), this.dependencies[second]()]);
    const status: Record<string, string | undefined> = {};
    for (const result of results) for (const [name, detail] of Object.entries(result)) status[name] = detail.status;
    const session = this.indicators.check(key);
    return status[first] === 'up' || status[second] === 'up' ? session.up(status) : session.down(status);
  }
}
