export { ActivityRepository, type FeedCursor } from './activity.repository.js';
export { AuditRepository } from './audit.repository.js';
export { CounterRepository } from './counter.repository.js';
export { int8 } from './int8.js';
export { LedgerRepository } from './ledger.repository.js';
export { OffsetRepository } from './offset.repository.js';
export { PartitionHoldRepository, type PartitionHold } from './partition-hold.repository.js';
export { RedriveRepository, letterKey, type LetterRef } from './redrive.repository.js';
export { ReplayRequestRepository, type ReplayRequest } from './replay-request.repository.js';
export { StoreModule } from './store.module.js';
export type {
  ActivityRecord,
  ApplyCountersResult,
  ApplySource,
  CounterIncrement,
  CounterState,
  Tx,
} from './store.types.js';
