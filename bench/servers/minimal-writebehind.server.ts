// The same-work reference of the ingest and framework benchmarks: the API's write-behind path written by hand on
// plain Fastify, ioredis and kafkajs, as cheaply as it can be done with the same guarantees. Per write, one Lua
// script adds the delta to the Redis view (read-your-writes, the layout of libs/counter-view) and, for a request
// with an Idempotency-Key, claims the key in the same call (libs/idempotency's semantics: replay, 409, 422); the
// change event (libs/events' envelope, on the same topic, so the consumer applies it) is acknowledged by Kafka
// (idempotent producer, acks=all) before the answer, batched across concurrent requests. Schemas validate the body
// and serialize the answer. It does not do: a logger, metrics, API keys, rate limits, the write-through fallback (a
// Kafka failure answers 503 after taking the delta back) or a Postgres fill of a view miss (it serves 0 + pending).
// Run by the benchmarks as a child process: PORT, REDIS_URL, REDIS_KEY_PREFIX, KAFKA_BROKERS, KAFKA_TOPIC_COUNTERS.
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyReply } from 'fastify';
import { Redis } from 'ioredis';
import { CompressionTypes, Kafka, type Message, Partitioners, logLevel } from 'kafkajs';

const TOPIC = process.env['KAFKA_TOPIC_COUNTERS'] ?? 'counters';
const CLIENT = 'public';
const MODE = 'write-behind';
const PENDING_TTL_MS = 24 * 60 * 60 * 1000;
const LOCK_MS = 30_000;
const KEEP_SECONDS = 24 * 60 * 60;
const MAX_PER_SEND = 2000;
const MAX_QUEUED = 100_000;

// Idempotency records: `p<fingerprint>` while the first request runs, `d<fingerprint>\n<answer JSON>` once answered.
// KEYS: base, pending[, idempotency key]. ARGV: event id, delta, accepted ms, pending TTL ms, fingerprint, lock ms.
// Returns {1, value served} or {0, the record holding the key}.
const WRITE = `
if KEYS[3] and not redis.call('SET', KEYS[3], 'p' .. ARGV[5], 'PX', ARGV[6], 'NX') then
  return {0, redis.call('GET', KEYS[3])}
end
local sum
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2] .. ':' .. ARGV[3]) == 1 then
  sum = redis.call('HINCRBY', KEYS[2], ' sum', ARGV[2])
else
  sum = tonumber(redis.call('HGET', KEYS[2], ' sum'))
end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return {1, (tonumber(redis.call('HGET', KEYS[1], 'v')) or 0) + sum}`;

// KEYS: each item's pending key, then the idempotency key of each item that has one. ARGV: pending TTL ms, lock ms,
// then per item its event id, delta, accepted ms and fingerprint ('' without a key). Per item: 1 or the record.
const WRITE_MANY = `
local n = (#ARGV - 2) / 4
local out, k = {}, n
for i = 1, n do
  local j = 3 + (i - 1) * 4
  if ARGV[j + 3] ~= '' then
    k = k + 1
    if not redis.call('SET', KEYS[k], 'p' .. ARGV[j + 3], 'PX', ARGV[2], 'NX') then
      out[i] = redis.call('GET', KEYS[k])
    end
  end
  if not out[i] then
    if redis.call('HSETNX', KEYS[i], ARGV[j], ARGV[j + 1] .. ':' .. ARGV[j + 2]) == 1 then
      redis.call('HINCRBY', KEYS[i], ' sum', ARGV[j + 1])
    end
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
    out[i] = 1
  end
end
return out`;

// Kafka did not take the events: KEYS: the pending key of each, then idempotency keys to free. ARGV: the event ids.
const UNDO = `
for i = 1, #ARGV do
  local entry = redis.call('HGET', KEYS[i], ARGV[i])
  if entry then
    redis.call('HDEL', KEYS[i], ARGV[i])
    redis.call('HINCRBY', KEYS[i], ' sum', -tonumber(string.match(entry, '^(-?%d+):')))
  end
end
for i = #ARGV + 1, #KEYS do redis.call('DEL', KEYS[i]) end
return 0`;

const READ = `return (tonumber(redis.call('HGET', KEYS[1], 'v')) or 0) + (tonumber(redis.call('HGET', KEYS[2], ' sum')) or 0)`;

type Arg = string | number;
interface Scripts {
  wbWrite(numberOfKeys: number, ...keysThenArgs: Arg[]): Promise<[0, string] | [1, number]>;
  wbWriteMany(numberOfKeys: number, ...keysThenArgs: Arg[]): Promise<(1 | string)[]>;
  wbUndo(numberOfKeys: number, ...keysThenArgs: Arg[]): Promise<number>;
  wbRead(base: string, pending: string): Promise<number>;
}
const redis = new Redis(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379', {
  keyPrefix: process.env['REDIS_KEY_PREFIX'] ?? '',
}) as Redis & Scripts;
redis.defineCommand('wbWrite', { lua: WRITE });
redis.defineCommand('wbWriteMany', { lua: WRITE_MANY });
redis.defineCommand('wbUndo', { lua: UNDO });
redis.defineCommand('wbRead', { numberOfKeys: 2, lua: READ });

const producer = new Kafka({
  clientId: 'minimal-writebehind',
  brokers: (process.env['KAFKA_BROKERS'] ?? '127.0.0.1:9092').split(','),
  logLevel: logLevel.NOTHING,
}).producer({
  idempotent: true,
  maxInFlightRequests: 1,
  allowAutoTopicCreation: false,
  createPartitioner: Partitioners.DefaultPartitioner,
});
await producer.connect();

// kafkajs sends one request per sendBatch: while one is in flight, the next requests' events gather and go together.
const waiting: { messages: Message[]; resolve: () => void; reject: (error: unknown) => void }[] = [];
let queued = 0;
let sending = false;

function publish(messages: Message[]): Promise<void> {
  if (queued + messages.length > MAX_QUEUED) return Promise.reject(new Error('too many events wait for Kafka'));
  queued += messages.length;
  const done = new Promise<void>((resolve, reject) => waiting.push({ messages, resolve, reject }));
  if (!sending) void sendLoop();
  return done;
}

async function sendLoop(): Promise<void> {
  sending = true;
  while (waiting.length > 0) {
    const batch = [];
    const messages: Message[] = [];
    for (
      let next = waiting[0];
      next && (batch.length === 0 || messages.length + next.messages.length <= MAX_PER_SEND);
      next = waiting[0]
    ) {
      waiting.shift();
      batch.push(next);
      for (const m of next.messages) messages.push(m);
    }
    queued -= messages.length;
    try {
      await producer.sendBatch({
        acks: -1,
        compression: CompressionTypes.None,
        topicMessages: [{ topic: TOPIC, messages }],
      });
      for (const w of batch) w.resolve();
    } catch (error) {
      for (const w of batch) w.reject(error);
    }
  }
  sending = false;
}

const event = (id: string, name: string, by: number, ts: number): Message => ({
  key: name,
  value: JSON.stringify({ v: 1, id, type: 'counter.incremented', key: name, ts, by }),
});
const idemKey = (key: string) => `idem:${CLIENT}:${key}`;
const pendingKey = (name: string) => `{c:${name}}:pending`;
/** What a key's record means for a request with this fingerprint: a stored answer, 409 or 422. */
function held(record: string, fingerprint: string): { status: 409 | 422 } | { status: 202; answer: string } {
  const done = record[0] === 'd';
  const end = done ? record.indexOf('\n') : record.length;
  if (record.slice(1, end) !== fingerprint) return { status: 422 };
  return done ? { status: 202, answer: record.slice(end + 1) } : { status: 409 };
}
const unavailable = (reply: FastifyReply) => reply.code(503).send({ error: 'Kafka did not acknowledge the write' });

const STR = { type: 'string' };
const INT = { type: 'integer' };
const NAME = { type: 'string', pattern: '^[A-Za-z0-9:_.-]{1,200}$' };
const KEY = { type: 'string', pattern: '^[\\x21-\\x7e]{1,200}$' };
const BY = { type: 'integer', minimum: -1_000_000, maximum: 1_000_000, not: { const: 0 }, default: 1 };
const object = (properties: Record<string, unknown>, required: string[] = []) => ({
  type: 'object',
  required,
  additionalProperties: false,
  properties,
});
const params = object({ name: NAME }, ['name']);
const ANSWER = object({ name: STR, value: INT, eventId: STR, mode: STR });
const RESULT = object({ name: STR, eventId: STR, status: STR, mode: STR });
const BATCH = object(
  {
    increments: {
      type: 'array',
      minItems: 1,
      maxItems: 1000,
      items: object({ name: NAME, by: BY, id: KEY }, ['name']),
    },
  },
  ['increments'],
);

const app = Fastify({
  logger: false,
  ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: true } },
});

app.post<{ Params: { name: string }; Body: { by: number }; Headers: { 'idempotency-key'?: string } }>(
  '/v1/counters/:name/increment',
  {
    schema: {
      params,
      headers: { type: 'object', properties: { 'idempotency-key': KEY } },
      body: object({ by: BY }),
      response: { 202: ANSWER },
    },
    // No body at all means {"by": 1}.
    preValidation: (request, _reply, done) => {
      request.body ??= { by: 1 };
      done();
    },
  },
  async (request, reply) => {
    const { name } = request.params;
    const { by } = request.body;
    const key = request.headers['idempotency-key'];
    const idem = key === undefined ? [] : [idemKey(key)];
    const eventId = `${CLIENT}:${key ?? randomUUID()}`;
    const fingerprint = `${by} ${name}`;
    const now = Date.now();
    const written = await redis.wbWrite(
      2 + idem.length,
      `{c:${name}}:base`,
      pendingKey(name),
      ...idem,
      eventId,
      by,
      now,
      PENDING_TTL_MS,
      fingerprint,
      LOCK_MS,
    );
    if (written[0] === 0) {
      const h = held(written[1], fingerprint);
      if (h.status === 202) return reply.code(202).type('application/json').send(h.answer);
      return reply.code(h.status).send({ error: h.status === 409 ? 'in flight' : 'another request used this key' });
    }
    try {
      await publish([event(eventId, name, by, now)]);
    } catch {
      await redis.wbUndo(1 + idem.length, pendingKey(name), ...idem, eventId);
      return unavailable(reply);
    }
    const answer = { name, value: written[1], eventId, mode: MODE };
    if (key !== undefined)
      await redis.set(idemKey(key), `d${fingerprint}\n${JSON.stringify(answer)}`, 'EX', KEEP_SECONDS);
    return reply.code(202).send(answer);
  },
);

app.post<{ Body: { increments: { name: string; by: number; id?: string }[] } }>(
  '/v1/counters/batch',
  {
    schema: {
      body: BATCH,
      response: { 202: object({ accepted: INT, mode: STR, results: { type: 'array', items: RESULT } }) },
    },
  },
  async (request, reply) => {
    const now = Date.now();
    const items = request.body.increments.map((item) => ({
      ...item,
      eventId: `${CLIENT}:${item.id ?? randomUUID()}`,
      fingerprint: item.id === undefined ? '' : `${item.by} ${item.name}`,
    }));
    const keyed = items.flatMap((item) => (item.id === undefined ? [] : [idemKey(item.id)]));
    if (new Set(keyed).size < keyed.length) return reply.code(400).send({ error: 'an id is repeated in this batch' });
    const claims = await redis.wbWriteMany(
      items.length + keyed.length,
      ...items.map((item) => pendingKey(item.name)),
      ...keyed,
      PENDING_TTL_MS,
      LOCK_MS,
      ...items.flatMap((item) => [item.eventId, item.by, now, item.fingerprint]),
    );
    const accepted = items.filter((_, i) => claims[i] === 1);
    const acceptedKeys = accepted.flatMap((item) => (item.id === undefined ? [] : [idemKey(item.id)]));
    try {
      if (accepted.length > 0) await publish(accepted.map((item) => event(item.eventId, item.name, item.by, now)));
    } catch {
      await redis.wbUndo(
        accepted.length + acceptedKeys.length,
        ...accepted.map((item) => pendingKey(item.name)),
        ...acceptedKeys,
        ...accepted.map((item) => item.eventId),
      );
      return unavailable(reply);
    }
    if (acceptedKeys.length > 0) {
      const pipeline = redis.pipeline();
      for (const { id = '', name, eventId, fingerprint } of accepted) {
        const answer = JSON.stringify({ name, value: null, eventId, mode: MODE });
        if (fingerprint !== '') pipeline.set(idemKey(id), `d${fingerprint}\n${answer}`, 'EX', KEEP_SECONDS);
      }
      await pipeline.exec();
    }
    const results = items.map(({ name, eventId, fingerprint }, i) => {
      const claim = claims[i] ?? '';
      if (claim === 1) return { name, eventId, status: 'accepted', mode: MODE };
      const { status } = held(claim, fingerprint);
      if (status === 202) return { name, eventId, status: 'duplicate', mode: MODE };
      return { name, eventId, status: status === 409 ? 'in-flight' : 'conflict' };
    });
    return reply.code(202).send({ accepted: accepted.length, mode: MODE, results });
  },
);

app.get<{ Params: { name: string } }>(
  '/v1/counters/:name',
  { schema: { params, response: { 200: object({ name: STR, value: INT }) } } },
  async (request) => {
    const { name } = request.params;
    return { name, value: await redis.wbRead(`{c:${name}}:base`, pendingKey(name)) };
  },
);

app.get('/health/ready', async () => ({ status: 'ok' }));
await app.listen({ port: Number(process.env['PORT'] ?? 3300), host: '127.0.0.1' });
// Exits on SIGTERM like the apps (and so writes its --cpu-prof profile when bench/profile.ts stops it).
process.on('SIGTERM', () => process.exit(0));
