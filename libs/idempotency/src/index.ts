export { IdempotencyModule } from './idempotency.module.js';
export { IdempotencyService } from './idempotency.service.js';
export type { Claim, IdempotencyUnavailable, StoredResponse } from './idempotency.types.js';
export { IdempotentWrites, type KeyedWrite, type WriteAnswer } from './idempotent-writes.js';
