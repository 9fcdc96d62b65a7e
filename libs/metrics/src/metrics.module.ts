import { type DynamicModule, Global, Module } from '@nestjs/common';
import { HttpMetrics } from './http.metrics.js';
import { MetricsController } from './metrics.controller.js';
import { MetricsRegistry } from './metrics.registry.js';

@Global()
@Module({})
export class MetricsModule {
  /**
   * `routes`: serve `GET /metrics` on the app's HTTP server (default). False when another listener (an admin port)
   * serves it from the exported registry.
   */
  static forRoot(routes = true): DynamicModule {
    return {
      module: MetricsModule,
      controllers: routes ? [MetricsController] : [],
      providers: [MetricsRegistry, HttpMetrics],
      exports: [MetricsRegistry],
    };
  }
}
