import { Global, Module } from '@nestjs/common';
import { HttpMetrics } from './http.metrics.js';
import { MetricsController } from './metrics.controller.js';
import { MetricsRegistry } from './metrics.registry.js';

@Global()
@Module({ controllers: [MetricsController], providers: [MetricsRegistry, HttpMetrics], exports: [MetricsRegistry] })
export class MetricsModule {}
