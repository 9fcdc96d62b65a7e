export { LagModule } from './lag.module.js';
export { LagMonitor, appliedThrough } from './lag.monitor.js';
export type { PartitionLag } from './lag.types.js';
