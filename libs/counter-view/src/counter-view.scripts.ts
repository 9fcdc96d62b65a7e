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

/** Takes back a delta added by the script that runs it (the bound was passed); a pending hash left empty goes. */
const UNDO = `
local function undo(pending, id, delta)
  redis.call('HDEL', pending, id)
  local sum = redis.call('HINCRBY', pending, ' sum', -delta)
  if sum == 0 and redis.call('HLEN', pending) == 1 then redis.call('DEL', pending) end
  return sum
end`;

/**
 * The write of one counter: optionally takes an Idempotency-Key in the same step (on a single server; a cluster
 * keeps the key in another slot and takes it first), then adds the delta to pending, unless the value served would
 * pass the largest safe integer (checked when the base is cached: a cold counter is checked by the caller once it is
 * filled). A repeated id is not added twice. KEYS: base, pending[, idempotency key]. ARGV: event id, delta, accepted
 * ms, pending TTL ms, largest absolute value[, holding record, lease ms]. Returns {'ok', v, ver, sum}, or
 * {'held', record} (the key is someone else's: nothing changed), or {'range', v, ver, sum} (nothing changed).
 * Four Redis calls on the common path (six with a key): they are most of the script's cost.
 */
export const WRITE = `${UNDO}
if KEYS[3] then
  local held = redis.call('GET', KEYS[3])
  if held then return {'held', held} end
end
local base = redis.call('HMGET', KEYS[1], 'v', 'ver')
local sum
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2] .. ':' .. ARGV[3]) == 1 then
  sum = redis.call('HINCRBY', KEYS[2], ' sum', ARGV[2])
  if base[1] and math.abs(tonumber(base[1]) + sum) > tonumber(ARGV[5]) then
    return {'range', base[1], base[2], undo(KEYS[2], ARGV[1], tonumber(ARGV[2]))}
  end
else
  sum = redis.call('HGET', KEYS[2], ' sum')
end
if KEYS[3] then redis.call('SET', KEYS[3], ARGV[6], 'PX', ARGV[7]) end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return {'ok', base[1], base[2], sum}`;

/**
 * The write of a batch in one call (single server only: the keys of many counters are in many slots). KEYS: base
 * and pending of each item (2i-1, 2i), then the idempotency keys of the items that have one. ARGV: pending TTL ms,
 * largest absolute value, lease ms, then per item: event id, delta, accepted ms, the KEYS index of its idempotency
 * key (0: none), its holding record. An item whose key is held by someone else is skipped; if any other item would
 * take its counter past the bound (where the base is cached), everything the call added is taken back and no key
 * is taken. Returns {'ok', r1, ..., rn} with ri '' (added) or the record holding the item's key, or {'range', i}.
 */
export const WRITE_MANY = `${UNDO}
local n = (#ARGV - 3) / 5
local maxAbs = tonumber(ARGV[2])
local replies = {'ok'}
for i = 1, n do
  local idem = tonumber(ARGV[(i - 1) * 5 + 7])
  replies[i + 1] = idem > 0 and (redis.call('GET', KEYS[idem]) or '') or ''
end
local added, bases, touched = {}, {}, {}
for i = 1, n do
  if replies[i + 1] == '' then
    local j = 3 + (i - 1) * 5
    local pending = KEYS[2 * i]
    if redis.call('HSETNX', pending, ARGV[j + 1], ARGV[j + 2] .. ':' .. ARGV[j + 3]) == 1 then
      local sum = redis.call('HINCRBY', pending, ' sum', ARGV[j + 2])
      added[#added + 1] = i
      local baseKey = KEYS[2 * i - 1]
      if bases[baseKey] == nil then bases[baseKey] = redis.call('HGET', baseKey, 'v') end
      local v = bases[baseKey]
      if v and math.abs(tonumber(v) + sum) > maxAbs then
        for _, k in ipairs(added) do
          local jk = 3 + (k - 1) * 5
          undo(KEYS[2 * k], ARGV[jk + 1], tonumber(ARGV[jk + 2]))
        end
        return {'range', i}
      end
    end
    touched[pending] = true
  end
end
for i = 1, n do
  local idem = tonumber(ARGV[(i - 1) * 5 + 7])
  if idem > 0 and replies[i + 1] == '' then redis.call('SET', KEYS[idem], ARGV[(i - 1) * 5 + 8], 'PX', ARGV[3]) end
end
for pending in pairs(touched) do redis.call('PEXPIRE', pending, ARGV[1]) end
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
