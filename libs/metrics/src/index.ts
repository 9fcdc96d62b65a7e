export { HttpMetrics, UNMATCHED_ROUTE } from './http.metrics.js';
export { MetricsModule } from './metrics.module.js';
export { MetricsRegistry } from './metrics.registry.js';
