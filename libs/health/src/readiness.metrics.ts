import {
  type BeforeApplicationShutdown,
  HttpException,
  Injectable,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { HealthCheckService, type HealthCheckResult } from '@nestjs/terminus';
import { MetricsRegistry } from '@app/metrics';
import { Lifecycle } from '@app/platform';
import { Gauge } from 'prom-client';
import { ReadinessPolicy } from './readiness.policy.js';

/** How often readiness is evaluated for the metrics; the checks' results are cached briefly anyway. */
const EVALUATE_EVERY_MS = 5000;

/**
 * Readiness as metrics, for alerting and dashboards: `writebehind_ready` (1 when `/health/ready` would answer
 * 200) and `writebehind_readiness_check{check}` per check of the app's policy. Evaluated on a timer, not during
 * the scrape, so a hanging dependency never slows `/metrics` down; nothing else calls `/health/ready` under
 * docker compose, so it cannot be fed by the probes alone.
 */
@Injectable()
export class ReadinessMetrics implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly ready: Gauge;
  private readonly checks: Gauge<'check'>;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    metrics: MetricsRegistry,
    private readonly health: HealthCheckService,
    private readonly policy: ReadinessPolicy,
    private readonly lifecycle: Lifecycle,
  ) {
    this.ready = new Gauge({
      name: 'writebehind_ready',
      help: '1 when the process is ready to take traffic (what /health/ready answers), else 0; evaluated every 5 s.',
      registers: [metrics.registry],
    });
    this.checks = new Gauge({
      name: 'writebehind_readiness_check',
      help: 'Per readiness check of the app (api: writes, reads; consumer: postgres, redis, kafka): 1 up, 0 down.',
      labelNames: ['check'],
      registers: [metrics.registry],
    });
    this.ready.set(0);
  }

  onApplicationBootstrap(): void {
    const loop = () => {
      this.running = this.evaluate().finally(() => {
        if (!this.lifecycle.isDraining) this.timer = setTimeout(loop, EVALUATE_EVERY_MS).unref();
      });
    };
    loop();
  }

  /** Draining: not ready from now on, as /health/ready says. */
  beforeApplicationShutdown(): void {
    clearTimeout(this.timer);
    this.ready.set(0);
  }

  async onApplicationShutdown(): Promise<void> {
    clearTimeout(this.timer);
    await this.running;
  }

  /** The same checks as `/health/ready`, through Terminus: a failing check makes it throw with the details. */
  async evaluate(): Promise<void> {
    let result: HealthCheckResult | undefined;
    try {
      result = await this.health.check(this.policy.checks());
    } catch (error) {
      const response = error instanceof HttpException ? error.getResponse() : undefined;
      result = typeof response === 'object' && response !== null ? (response as HealthCheckResult) : undefined;
    }
    for (const [check, detail] of Object.entries(result?.details ?? {})) {
      this.checks.set({ check }, detail.status === 'up' ? 1 : 0);
    }
    this.ready.set(result?.status === 'ok' && !this.lifecycle.isDraining ? 1 : 0);
  }
}
