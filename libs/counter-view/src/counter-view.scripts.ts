/**
 * Lua scripts of the Redis view of a counter (DESIGN.md section 7). Each runs atomically on the two keys of
 * one counter, which share the hash tag `{c:<name>}` so that they live in one slot on Redis Cluster:
 *
 *   KEYS[1] base     hash  v = value, ver = version: the counter as last read from or written to Postgres
 *   KEYS[2] pending  hash  <event id> = "<delta>:<accepted ms>" for events accepted but not known to be
 *                          applied, plus the field " sum" (a space cannot start an event id) holding their sum
 *
 * The value served is base.v + pending[" sum"]. Every script returns {v, ver, sum} after its change.
 */

const SNAPSHOT = `
local base = redis.call('HMGET', KEYS[1], 'v', 'ver')
return {base[1], base[2], redis.call('HGET', KEYS[2], ' sum')}`;

/** ARGV: event id, delta, accepted ms, pending TTL ms. A repeated id is not added twice. */
export const ADD_PENDING = `
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2] .. ':' .. ARGV[3]) == 1 then
  redis.call('HINCRBY', KEYS[2], ' sum', ARGV[2])
end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
${SNAPSHOT}`;

/**
 * `ADD_PENDING` for many counters in one call, without the snapshots (a batch does not need them). KEYS: the
 * pending key of each entry (a counter may come more than once); ARGV: pending TTL ms, then per entry its event
 * id, delta and accepted ms. Only for a single server: on Redis Cluster the keys of different counters are in
 * different slots, which one script cannot touch.
 */
export const ADD_PENDING_MANY = `
for i = 1, #KEYS do
  local j = 2 + (i - 1) * 3
  if redis.call('HSETNX', KEYS[i], ARGV[j], ARGV[j + 1] .. ':' .. ARGV[j + 2]) == 1 then
    redis.call('HINCRBY', KEYS[i], ' sum', ARGV[j + 1])
  end
  redis.call('PEXPIRE', KEYS[i], ARGV[1])
end
return #KEYS`;

/** ARGV: event ids. Removes them from pending (the Kafka send failed and nothing else will apply them). */
export const REMOVE_PENDING = `
for i = 1, #ARGV do
  local entry = redis.call('HGET', KEYS[2], ARGV[i])
  if entry then
    redis.call('HDEL', KEYS[2], ARGV[i])
    redis.call('HINCRBY', KEYS[2], ' sum', -tonumber(string.match(entry, '^(-?%d+):')))
  end
end
if redis.call('HLEN', KEYS[2]) == 1 and tonumber(redis.call('HGET', KEYS[2], ' sum')) == 0 then
  redis.call('DEL', KEYS[2])
end
${SNAPSHOT}`;

/**
 * ARGV: value, version, base TTL ms, then event ids now applied in Postgres. Used after a transaction commits
 * (consumer, write-through) and to fill a miss. The ids leave pending; base moves to (value, version) only
 * if that is newer than what it holds, so a late reconcile never moves the view back.
 */
export const RECONCILE = `
for i = 4, #ARGV do
  local entry = redis.call('HGET', KEYS[2], ARGV[i])
  if entry then
    redis.call('HDEL', KEYS[2], ARGV[i])
    redis.call('HINCRBY', KEYS[2], ' sum', -tonumber(string.match(entry, '^(-?%d+):')))
  end
end
if redis.call('HLEN', KEYS[2]) == 1 and tonumber(redis.call('HGET', KEYS[2], ' sum')) == 0 then
  redis.call('DEL', KEYS[2])
end
local current = redis.call('HGET', KEYS[1], 'ver')
if not current or tonumber(current) < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'v', ARGV[1], 'ver', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
${SNAPSHOT}`;

export const READ = SNAPSHOT;
