import { ServiceUnavailableException } from '@nestjs/common';
import type { HealthCheckResult, HealthCheckService } from '@nestjs/terminus';
import type { Lifecycle } from '@app/platform';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ReadinessMetrics } from './readiness.metrics.js';
import type { ReadinessPolicy } from './readiness.policy.js';

function setUp(answer: () => Promise<HealthCheckResult>) {
  const registry = new Registry();
  const lifecycle = { isDraining: false };
  const health = { check: answer } as unknown as HealthCheckService;
  const policy = { checks: () => [] } as unknown as ReadinessPolicy;
  const metrics = new ReadinessMetrics({ registry }, health, policy, lifecycle as Lifecycle);
  const values = async () =>
    Object.fromEntries(
      (await registry.getMetricsAsJSON()).flatMap((m) =>
        m.values.map((v) => [
          v.labels['check'] === undefined ? m.name : `${m.name}{${String(v.labels['check'])}}`,
          v.value,
        ]),
      ),
    );
  return { metrics, values, lifecycle };
}

describe('ReadinessMetrics', () => {
  it('exports 1 and every check up when /health/ready would answer 200', async () => {
    const { metrics, values } = setUp(async () => ({
      status: 'ok',
      details: { writes: { status: 'up' }, reads: { status: 'up' } },
    }));
    await metrics.evaluate();
    expect(await values()).toEqual({
      writebehind_ready: 1,
      'writebehind_readiness_check{writes}': 1,
      'writebehind_readiness_check{reads}': 1,
    });
  });

  it('exports 0 and the check that is down when it would answer 503, and 0 while draining', async () => {
    const result: HealthCheckResult = {
      status: 'error',
      details: { writes: { status: 'up' }, reads: { status: 'down' } },
    };
    const { metrics, values } = setUp(() => Promise.reject(new ServiceUnavailableException(result)));
    await metrics.evaluate();
    expect(await values()).toEqual({
      writebehind_ready: 0,
      'writebehind_readiness_check{writes}': 1,
      'writebehind_readiness_check{reads}': 0,
    });

    const healthy = setUp(async () => ({ status: 'ok', details: { reads: { status: 'up' } } }));
    healthy.lifecycle.isDraining = true;
    await healthy.metrics.evaluate();
    expect((await healthy.values())['writebehind_ready']).toBe(0);
  });
});
