export { LagModule } from './lag.module.js';
export { LagMonitor } from './lag.monitor.js';
export type { PartitionLag } from './lag.types.js';
