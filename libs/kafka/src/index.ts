export { KafkaAdmin, type EnsureTopicsResult } from './kafka.admin.js';
export { KafkaClient, kafkaSecurity } from './kafka.client.js';
export { KafkaModule } from './kafka.module.js';
export { KafkaProducer } from './kafka.producer.js';
export { TopicPartitions } from './topic-partitions.js';
export { createTopicsAndWait } from './topic-creation.js';
export { CHANGE_EVENT_TOPIC_CONFIG, changeEventTopicConfig, deadLetterTopic, topicSpecs } from './topics.js';
export { readToEnd, type ReadMessage, type ReadOptions } from './topic-reader.js';
