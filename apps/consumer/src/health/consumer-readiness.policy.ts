import { Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorFunction } from '@nestjs/terminus';
import { DependenciesHealth, ReadinessPolicy } from '@app/health';
import { ConsumerStatus } from './consumer-status.service.js';

/**
 * Ready = the consumer is applying: Postgres answers and no batch has been stuck retrying a transient failure for
 * longer than CONSUMER_STALL_UNREADY_MS; Kafka answers and the consumer is in its group (not crashed, not
 * restarting); Redis answers (the view it reconciles). The consumer's own state is reported under the `postgres`
 * and `kafka` keys, with the reason, so the checks stay the three dependencies every app reports.
 */
@Injectable()
export class ConsumerReadiness extends ReadinessPolicy {
  constructor(
    private readonly dependencies: DependenciesHealth,
    private readonly indicators: HealthIndicatorService,
    private readonly status: ConsumerStatus,
  ) {
    super();
  }

  checks(): HealthIndicatorFunction[] {
    return [
      async () => {
        const result = await this.dependencies.postgres();
        const problem = this.status.postgresProblem();
        return problem && result.postgres.status === 'up' ? this.indicators.check('postgres').down(problem) : result;
      },
      () => this.dependencies.redis(),
      async () => {
        const result = await this.dependencies.kafka();
        const problem = this.status.kafkaProblem();
        return problem && result.kafka.status === 'up' ? this.indicators.check('kafka').down(problem) : result;
      },
    ];
  }
}
