import { Global, Module } from '@nestjs/common';
import { KafkaAdmin } from './kafka.admin.js';
import { KafkaClient } from './kafka.client.js';
import { KafkaProducer } from './kafka.producer.js';
import { TopicPartitions } from './topic-partitions.js';

@Global()
@Module({
  providers: [KafkaClient, KafkaAdmin, KafkaProducer, TopicPartitions],
  exports: [KafkaClient, KafkaAdmin, KafkaProducer, TopicPartitions],
})
export class KafkaModule {}
