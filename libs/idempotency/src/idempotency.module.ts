import { Module } from '@nestjs/common';
import { IdempotencyRepository } from './idempotency.repository.js';
import { IdempotencyService } from './idempotency.service.js';
import { IdempotentWrites } from './idempotent-writes.js';

@Module({
  providers: [IdempotencyRepository, IdempotencyService, IdempotentWrites],
  exports: [IdempotencyService, IdempotentWrites],
})
export class IdempotencyModule {}
