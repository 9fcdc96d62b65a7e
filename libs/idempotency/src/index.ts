export { IdempotencyModule } from './idempotency.module.js';
export { type KeyState, answered, holding, idempotencyKey, keyState } from './idempotency.records.js';
export type { HeldKey } from './idempotency.repository.js';
export { type Claim, IdempotencyService, type KeyRequest, type KeyedWrite } from './idempotency.service.js';
