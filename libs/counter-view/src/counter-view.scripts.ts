import { CLAIM_FUNCTION } from '@app/idempotency';

/**
 * Lua scripts of the Redis view of a counter (docs/architecture.md, section 7). Each runs atomically on the two keys
 * of one counter, which share the hash tag `{c:<name>}` so that they live in one slot on Redis Cluster:
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

/**
 * Whether adding `delta` to a counter would take its served value past the largest safe integer: checked only when
 * the base is cached (a cold counter is checked by the caller once it is filled).
 */
const OUT_OF_RANGE = `
local function outOfRange(value, sum, delta, maxAbs)
  if not value then return false end
  return math.abs(tonumber(value) + (tonumber(sum) or 0) + delta) > maxAbs
end`;

/**
 * The write of one counter: optionally takes an Idempotency-Key in the same step (on a single server; a cluster
 * keeps the key in another slot and takes it first), then adds the delta to pending. A repeated id is not added
 * twice. KEYS: base, pending[, idempotency key]. ARGV: event id, delta, accepted ms, pending TTL ms, largest
 * absolute value[, holding record, lease ms]. Returns {'ok', v, ver, sum}, or {'held', record} (the key is someone
 * else's: nothing changed), or {'range', v, ver, sum} (the value would pass the bound: nothing changed).
 */
export const WRITE = `${CLAIM_FUNCTION}
${OUT_OF_RANGE}
local base = redis.call('HMGET', KEYS[1], 'v', 'ver')
local sum = redis.call('HGET', KEYS[2], ' sum')
if KEYS[3] then
  local held = redis.call('GET', KEYS[3])
  if held then return {'held', held} end
end
if outOfRange(base[1], sum, tonumber(ARGV[2]), tonumber(ARGV[5])) then return {'range', base[1], base[2], sum} end
if KEYS[3] then claim(KEYS[3], ARGV[6], ARGV[7]) end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2] .. ':' .. ARGV[3]) == 1 then
  sum = redis.call('HINCRBY', KEYS[2], ' sum', ARGV[2])
end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return {'ok', base[1], base[2], sum}`;

/**
 * The write of a batch in one call (single server only: the keys of many counters are in many slots). KEYS: base
 * and pending of each item (2i-1, 2i), then the idempotency keys of the items that have one. ARGV: pending TTL ms,
 * largest absolute value, lease ms, then per item: event id, delta, accepted ms, the KEYS index of its idempotency
 * key (0: none), its holding record. An item whose key is held by someone else is skipped; if any other item would
 * take its counter past the bound, nothing changes. Returns {'ok', r1, ..., rn} with ri '' (added) or the record
 * holding the item's key, or {'range', i}.
 */
export const WRITE_MANY = `${CLAIM_FUNCTION}
${OUT_OF_RANGE}
local n = (#ARGV - 3) / 5
local replies, added = {'ok'}, {}
for i = 1, n do
  local idem = tonumber(ARGV[3 + (i - 1) * 5 + 4])
  replies[i + 1] = ''
  if idem > 0 then replies[i + 1] = redis.call('GET', KEYS[idem]) or '' end
end
for i = 1, n do
  if replies[i + 1] == '' then
    local j = 3 + (i - 1) * 5
    local pending = KEYS[2 * i]
    local base = redis.call('HGET', KEYS[2 * i - 1], 'v')
    added[pending] = (added[pending] or 0) + tonumber(ARGV[j + 2])
    if outOfRange(base, redis.call('HGET', pending, ' sum'), added[pending], tonumber(ARGV[2])) then
      return {'range', i}
    end
  end
end
for i = 1, n do
  if replies[i + 1] == '' then
    local j = 3 + (i - 1) * 5
    local pending = KEYS[2 * i]
    local idem = tonumber(ARGV[j + 4])
    if idem > 0 then claim(KEYS[idem], ARGV[j + 5], ARGV[3]) end
    if redis.call('HSETNX', pending, ARGV[j + 1], ARGV[j + 2] .. ':' .. ARGV[j + 3]) == 1 then
      redis.call('HINCRBY', pending, ' sum', ARGV[j + 2])
    end
    redis.call('PEXPIRE', pending, ARGV[1])
  end
end
return replies`;

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
