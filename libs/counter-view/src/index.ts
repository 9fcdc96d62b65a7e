export { CounterViewModule } from './counter-view.module.js';
export { CounterViewRepository, type PendingEntry, type ViewSnapshot } from './counter-view.repository.js';
export { CounterView } from './counter-view.service.js';
