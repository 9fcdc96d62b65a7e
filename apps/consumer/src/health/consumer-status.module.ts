import { Module } from '@nestjs/common';
import { ConsumerStatus } from './consumer-status.service.js';

/** The one ConsumerStatus: written by the consumer, read by the readiness policy (imported by both). */
@Module({ providers: [ConsumerStatus], exports: [ConsumerStatus] })
export class ConsumerStatusModule {}
