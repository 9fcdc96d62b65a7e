import { Injectable } from '@nestjs/common';
import { ServiceInfo } from '@app/platform';
import { Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The process's one prom-client registry (not the global default, so two apps in one test process never
 * collide). Every metric carries `service`; per-metric labels must stay bounded: route templates and
 * topic/partition, never counter names, keys or raw paths (siimon/prom-client#216).
 */
@Injectable()
export class MetricsRegistry {
  readonly registry = new Registry();

  constructor(service: ServiceInfo) {
    this.registry.setDefaultLabels({ service: service.name });
    collectDefaultMetrics({ register: this.registry });
  }
}
