export { KafkaAdmin, type EnsureTopicsResult } from './kafka.admin.js';
export { KafkaClient } from './kafka.client.js';
export { KafkaModule } from './kafka.module.js';
export { KafkaProducer } from './kafka.producer.js';
export { deadLetterTopic, topicSpecs } from './topics.js';
export { readToEnd, type ReadMessage, type ReadOptions } from './topic-reader.js';
