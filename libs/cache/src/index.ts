export { CacheAside } from './cache-aside.js';
export type { CacheAsideOptions, CacheEvents, CacheStore } from './cache.types.js';
export { ReadThroughCache } from './read-through.js';
export { RedisCacheStore } from './redis-cache.store.js';
export { SingleFlight } from './single-flight.js';
export { jitteredTtl } from './ttl.js';
export { WriteBehind } from './write-behind.js';
export { WriteThrough } from './write-through.js';
