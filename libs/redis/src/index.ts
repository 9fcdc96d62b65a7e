export { RedisClient, type PipelineReply, type RedisConnection, type SlotCommands } from './redis.client.js';
export { RedisModule } from './redis.module.js';
