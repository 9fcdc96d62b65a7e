export { CounterViewModule } from './counter-view.module.js';
export {
  CounterViewRepository,
  type PendingEntry,
  type ViewClaim,
  type ViewSnapshot,
  type WriteManyOutcome,
} from './counter-view.repository.js';
export { CounterView, type CounterWrite } from './counter-view.service.js';
export { type PendingFinding, ViewSweep } from './view-sweep.js';
