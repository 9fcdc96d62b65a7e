import { Global, Module } from '@nestjs/common';
import { KafkaAdmin } from './kafka.admin.js';
import { KafkaClient } from './kafka.client.js';
import { KafkaProducer } from './kafka.producer.js';

@Global()
@Module({ providers: [KafkaClient, KafkaAdmin, KafkaProducer], exports: [KafkaClient, KafkaAdmin, KafkaProducer] })
export class KafkaModule {}
