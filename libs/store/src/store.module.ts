import { Module } from '@nestjs/common';
import { ActivityRepository } from './activity.repository.js';
import { AuditRepository } from './audit.repository.js';
import { CounterRepository } from './counter.repository.js';
import { LedgerRepository } from './ledger.repository.js';
import { OffsetRepository } from './offset.repository.js';
import { PartitionHoldRepository } from './partition-hold.repository.js';
import { RedriveRepository } from './redrive.repository.js';
import { ReplayRequestRepository } from './replay-request.repository.js';

/** The Postgres repositories of the system of record. Needs the db module (CoreModule provides it). */
@Module({
  providers: [
    CounterRepository,
    ActivityRepository,
    LedgerRepository,
    OffsetRepository,
    ReplayRequestRepository,
    AuditRepository,
    RedriveRepository,
    PartitionHoldRepository,
  ],
  exports: [
    CounterRepository,
    ActivityRepository,
    LedgerRepository,
    OffsetRepository,
    ReplayRequestRepository,
    AuditRepository,
    RedriveRepository,
    PartitionHoldRepository,
  ],
})
export class StoreModule {}
