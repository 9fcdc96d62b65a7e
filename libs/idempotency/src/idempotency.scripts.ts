/**
 * Lua scripts of the idempotency records (idempotency.records.ts). Each takes any number of keys, so that on a
 * single server a whole batch is one call; on a Redis Cluster each key goes in a call of its own (keys of one call
 * must share a slot).
 */

/**
 * Takes each key that is free. KEYS: the keys; ARGV: lease ms, then the holding record of each key. Returns, per
 * key, `false` when it was taken now, else the record that holds it. (The counter view's write scripts take keys the
 * same way, together with their own work.)
 */
export const CLAIM = `
local replies = {}
for i = 1, #KEYS do
  local held = redis.call('GET', KEYS[i])
  if held then
    replies[i] = held
  else
    redis.call('SET', KEYS[i], ARGV[i + 1], 'PX', ARGV[1])
    replies[i] = false
  end
end
return replies`;

/**
 * Stores answers under keys still held by the request that answered. KEYS: the keys; ARGV: TTL seconds, then per
 * key its holding record and its answered record. A key whose lease ran out and was taken by another request is left
 * to that request. Returns how many were stored.
 */
export const COMPLETE = `
local stored = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[i * 2] then
    redis.call('SET', KEYS[i], ARGV[i * 2 + 1], 'EX', ARGV[1])
    stored = stored + 1
  end
end
return stored`;

/** Frees keys still held by the request that failed. KEYS: the keys; ARGV: the holding record of each. */
export const RELEASE = `
local freed = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[i] then
    redis.call('DEL', KEYS[i])
    freed = freed + 1
  end
end
return freed`;
