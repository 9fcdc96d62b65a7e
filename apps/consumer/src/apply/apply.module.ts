import { Module } from '@nestjs/common';
import { CounterViewModule } from '@app/counter-view';
import { StoreModule } from '@app/store';
import { ConsumerStatusModule } from '../health/consumer-status.module.js';
import { LedgerPruner } from './ledger-pruner.service.js';
import { LedgerRetention } from './ledger-retention.service.js';
import { OffsetGuard } from './offset-guard.js';
import { PartitionHolds } from './partition-holds.service.js';
import { BatchService } from './batch.service.js';
import { ConsumerMetrics } from './consumer.metrics.js';
import { DeadLetterProducer } from './dead-letter.producer.js';
import { PersistenceConsumer } from './persistence.consumer.js';
import { RetryService } from './retry.service.js';
import { ViewSyncService } from './view-sync.service.js';

/** Kafka to Postgres: the consumer group, batch apply, retries, dead letters, the Redis view after commit. */
@Module({
  imports: [StoreModule, CounterViewModule, ConsumerStatusModule],
  providers: [
    ConsumerMetrics,
    RetryService,
    DeadLetterProducer,
    ViewSyncService,
    OffsetGuard,
    PartitionHolds,
    LedgerRetention,
    BatchService,
    PersistenceConsumer,
    LedgerPruner,
  ],
  exports: [PersistenceConsumer],
})
export class ApplyModule {}
