// The producer: the API's micro-batcher (the built EventPublisher, run in this process on the built KafkaProducer,
// fed by CALLERS concurrent writers of one event each, as concurrent HTTP requests feed it) against a standalone
// kafkajs loop sending pre-built batches of the size the micro-batcher reached (the ceiling for that batch size),
// and against one send per event from the same concurrent writers (what kafkajs does without the batcher). All
// three use the same producer settings (idempotent, acks=all, one request in flight), the same pre-built messages
// (a counter event with its traceparent header) and the same 12-partition topic, in ROUNDS alternating turns.
// Run: npm run bench -- producer   (DURATION=12 ROUNDS=3 CALLERS=100)
import { type Row, Scenario, ratio } from './lib/report.ts';
import { BenchStack, envNumber, importBuilt } from './lib/stack.ts';

const DURATION = envNumber('DURATION', 12);
const ROUNDS = envNumber('ROUNDS', 3);
const CALLERS = envNumber('CALLERS', 100);
const COUNTERS = 1000;

const scenario = new Scenario(
  'producer',
  `Producer: micro-batcher vs standalone batch loop vs one send per event (${CALLERS} concurrent writers, ${DURATION} s each)`,
  { DURATION, ROUNDS, CALLERS, COUNTERS },
  ['DURATION', 'ROUNDS', 'CALLERS'],
);

interface Message {
  topic: string;
  key: string;
  value: Buffer;
  headers: Record<string, string>;
}
type TopicMessages = { topic: string; messages: Omit<Message, 'topic'>[] }[];
interface Producer {
  connect(): Promise<void>;
  sendBatch(topicMessages: TopicMessages, timeoutMs?: number): Promise<unknown>;
  onApplicationShutdown(): Promise<void>;
}
interface Publisher {
  onModuleInit(): void;
  publish(messages: Message[]): Promise<void>;
  onApplicationShutdown(): Promise<void>;
}
type Ctor<T> = new (...args: unknown[]) => T;

/** A logger that drops everything (PinoLogger's surface). */
const silent = new Proxy({}, { get: () => () => undefined });

const stack = await BenchStack.create();
const rows: Row[] = [];
try {
  const { loadConfig } = await importBuilt<{ loadConfig: (env: Record<string, string>) => unknown }>(
    'api',
    'libs/config/src/index.js',
  );
  const kafkaLib = await importBuilt<{ KafkaClient: Ctor<unknown>; KafkaProducer: Ctor<Producer> }>(
    'api',
    'libs/kafka/src/index.js',
  );
  const { EventPublisher } = await importBuilt<{ EventPublisher: Ctor<Publisher> }>(
    'api',
    'apps/api/src/ingest/event-publisher.js',
  );
  const { ApiMetrics } = await importBuilt<{ ApiMetrics: Ctor<unknown> }>('api', 'apps/api/src/ingest/api.metrics.js');
  const { Registry } = await import('prom-client');
  const config = loadConfig(stack.env);
  const client = new kafkaLib.KafkaClient(config, silent);
  const newProducer = () => new kafkaLib.KafkaProducer(client, config, silent);

  const topic = stack.env['KAFKA_TOPIC_COUNTERS'] ?? '';
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const ring: Message[] = Array.from({ length: 10_000 }, (_, n) => {
    const key = `bench:${(n * 7919) % COUNTERS}`;
    const event = {
      v: 1,
      id: `public:${crypto.randomUUID()}`,
      type: 'counter.incremented',
      key,
      ts: Date.now(),
      by: 1,
    };
    return { topic, key, value: Buffer.from(JSON.stringify(event)), headers: { traceparent } };
  });
  let next = 0;
  const message = () => ring[next++ % ring.length] as Message;

  /** CALLERS writers, each awaiting its own event before the next, for `seconds`; their latencies kept. */
  async function writers(write: () => Promise<unknown>, seconds: number, latencies: number[]) {
    const started = performance.now();
    const deadline = started + seconds * 1000;
    let events = 0;
    await Promise.all(
      Array.from({ length: CALLERS }, async () => {
        while (performance.now() < deadline) {
          const t = performance.now();
          await write();
          latencies.push(performance.now() - t);
          events++;
        }
      }),
    );
    return { events, seconds: (performance.now() - started) / 1000 };
  }

  // 1. The micro-batcher, counting the events of each Kafka request it makes.
  const batched = newProducer();
  await batched.connect();
  let requests = 0;
  let requestEvents = 0;
  const send = batched.sendBatch.bind(batched);
  batched.sendBatch = (topicMessages, timeoutMs) => {
    requests++;
    for (const t of topicMessages) requestEvents += t.messages.length;
    return send(topicMessages, timeoutMs);
  };
  const publisher = new EventPublisher(batched, config, new ApiMetrics({ registry: new Registry() }, config), silent);
  publisher.onModuleInit();
  const viaPublisher = () => publisher.publish([message()]);
  await writers(viaPublisher, 3, []); // warm-up (metadata, connections, JIT), and the batch size it reaches
  const size = Math.max(1, Math.round(requestEvents / requests));

  // 2. A standalone loop of pre-built batches of that size, one request at a time.
  const loop = newProducer();
  await loop.connect();
  const batches: TopicMessages[] = Array.from({ length: 50 }, () => [
    {
      topic,
      messages: Array.from({ length: size }, () => message()).map(({ key, value, headers }) => ({
        key,
        value,
        headers,
      })),
    },
  ]);
  let nextBatch = 0;
  const standaloneLoop = async (seconds: number) => {
    let sent = 0;
    const started = performance.now();
    const deadline = started + seconds * 1000;
    while (performance.now() < deadline) {
      await loop.sendBatch(batches[nextBatch++ % batches.length] ?? []);
      sent += size;
    }
    return { events: sent, seconds: (performance.now() - started) / 1000 };
  };
  await standaloneLoop(2); // warm-up

  // 3. One send per event, from the same concurrent writers.
  const perEvent = () => {
    const { key, value, headers } = message();
    return loop.sendBatch([{ topic, messages: [{ key, value, headers }] }]);
  };

  // The three in ROUNDS alternating turns, so that a change in the machine's load weighs on all alike.
  const totals = {
    micro: { events: 0, seconds: 0 },
    loop: { events: 0, seconds: 0 },
    single: { events: 0, seconds: 0 },
  };
  const latencies = { micro: [] as number[], single: [] as number[] };
  requests = 0;
  requestEvents = 0;
  const slice = DURATION / ROUNDS;
  const add = (into: { events: number; seconds: number }, r: { events: number; seconds: number }) => {
    into.events += r.events;
    into.seconds += r.seconds;
  };
  for (let round = 0; round < ROUNDS; round++) {
    add(totals.micro, await writers(viaPublisher, slice, latencies.micro));
    add(totals.loop, await standaloneLoop(slice));
    add(totals.single, await writers(perEvent, slice, latencies.single));
  }
  const pct = (list: number[], q: number) => {
    const sorted = [...list].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  };
  rows.push(
    {
      bench: 'events to Kafka',
      variant: 'micro-batcher (EventPublisher)',
      unit: 'events/s',
      rate: totals.micro.events / totals.micro.seconds,
      p50Ms: pct(latencies.micro, 0.5),
      p99Ms: pct(latencies.micro, 0.99),
      extra: { 'mean batch': Number((requestEvents / requests).toFixed(1)), requests },
    },
    {
      bench: 'events to Kafka',
      variant: `standalone loop, pre-built batches of ${size}`,
      unit: 'events/s',
      rate: totals.loop.events / totals.loop.seconds,
      extra: { requests: totals.loop.events / size },
    },
    {
      bench: 'events to Kafka',
      variant: 'one send per event',
      unit: 'events/s',
      rate: totals.single.events / totals.single.seconds,
      p50Ms: pct(latencies.single, 0.5),
      p99Ms: pct(latencies.single, 0.99),
    },
  );
  await publisher.onApplicationShutdown();
  await batched.onApplicationShutdown();
  await loop.onApplicationShutdown();
} finally {
  await stack.dispose();
}

const rate = (prefix: string) => rows.find((r) => r.variant.startsWith(prefix))?.rate ?? NaN;
await scenario.report(rows, [
  ratio('micro-batcher / standalone batch loop events/s', rate('micro') / rate('standalone'), {
    op: '>=',
    threshold: 0.8,
  }),
  ratio('micro-batcher / one send per event events/s', rate('micro') / rate('one send'), { op: '>=', threshold: 5 }),
]);
