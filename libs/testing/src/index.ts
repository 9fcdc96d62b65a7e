export { AppProcess, appEntry, type AppName } from './app-process.js';
export { baseEnv, freePort, uniqueName } from './env.js';
export { TestStack, type TestStackOptions } from './test-stack.js';
export { waitFor, type WaitOptions } from './wait-for.js';
export { createTestContext } from './nest-module.js';
export { KafkaBroker, type KafkaBrokerOptions } from './kafka-broker.js';
export { PostgresServer, type PostgresStopMode } from './postgres-server.js';
export { RedisServer } from './redis-server.js';
export { readTopic, type ReadMessage } from './topic-reader.js';
