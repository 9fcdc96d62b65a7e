// Consumer throughput: a backlog of change events is produced to Kafka first, then drained by one consumer
// process, and again (fresh topics and schema) by two. Reported: events applied per second, per process, from the
// moment all processes are ready (in the group) to the last Postgres commit (wall clock), and the mean batch size
// (events per Postgres transaction, from the consumers' /metrics). Run: npm run bench -- consumer
// (EVENTS=500000 COUNTERS=1000 ACTIVITY_EVERY=10; CONSUMER_* variables are passed to the consumers)
import { randomUUID } from 'node:crypto';
import { type Row, report } from './lib/report.ts';
import { App, BenchStack, waitUntil } from './lib/stack.ts';

const EVENTS = Number(process.env['EVENTS'] ?? 500_000);
const COUNTERS = Number(process.env['COUNTERS'] ?? 1000);
const ACTIVITY_EVERY = Number(process.env['ACTIVITY_EVERY'] ?? 10);
const PRODUCE_BATCH = 2000;
const consumerSettings = Object.fromEntries(
  Object.entries(process.env).filter((e): e is [string, string] => e[0].startsWith('CONSUMER_') && e[1] !== undefined),
);

/** The change-event envelope (libs/events), written out here: benchmarks import no app code. */
function event(n: number): { topic: 'counters' | 'activities'; key: string; value: string } {
  const id = randomUUID();
  const ts = Date.now();
  if (ACTIVITY_EVERY > 0 && n % ACTIVITY_EVERY === 0) {
    const actor = `bench-actor-${n % 100}`;
    return {
      topic: 'activities',
      key: actor,
      value: JSON.stringify({
        v: 1,
        id,
        type: 'activity.recorded',
        key: actor,
        ts,
        verb: 'viewed',
        object: `post:${n}`,
        occurredAt: new Date(ts).toISOString(),
        data: null,
      }),
    };
  }
  const name = `bench:${(n * 7919) % COUNTERS}`;
  return {
    topic: 'counters',
    key: name,
    value: JSON.stringify({ v: 1, id, type: 'counter.incremented', key: name, ts, by: 1 }),
  };
}

async function produceBacklog(stack: BenchStack): Promise<void> {
  const producer = stack.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    for (let sent = 0; sent < EVENTS; sent += PRODUCE_BATCH) {
      const events = Array.from({ length: Math.min(PRODUCE_BATCH, EVENTS - sent) }, (_, i) => event(sent + i));
      await producer.sendBatch({
        acks: -1,
        topicMessages: (['counters', 'activities'] as const).map((t) => ({
          topic: stack.env[t === 'counters' ? 'KAFKA_TOPIC_COUNTERS' : 'KAFKA_TOPIC_ACTIVITIES'] ?? '',
          messages: events.filter((e) => e.topic === t).map(({ key, value }) => ({ key, value })),
        })),
      });
    }
  } finally {
    await producer.disconnect();
  }
}

/** Messages applied so far: the sum of the next offsets the consumers stored in Postgres. */
async function applied(stack: BenchStack): Promise<number> {
  const { rows } = await stack.pg.query<{ n: string }>(
    `SELECT coalesce(sum(next_offset), 0) AS n FROM "${stack.id}".consumer_offsets`,
  );
  return Number(rows[0]?.n ?? 0);
}

async function metric(app: App, name: string): Promise<number> {
  const text = await (await fetch(`${app.url}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

async function drain(processes: number): Promise<Row> {
  const stack = await BenchStack.create();
  try {
    await produceBacklog(stack);
    const apps = await Promise.all(
      Array.from({ length: processes }, () => App.start('consumer', { ...stack.env, ...consumerSettings })),
    );
    try {
      // From the moment every process is in the group (the first may have started on the backlog already).
      const startedAt = performance.now();
      const atStart = await applied(stack);
      if (atStart >= EVENTS * 0.8)
        throw new Error('the backlog was mostly drained before all consumers ran: raise EVENTS');
      await waitUntil(async () => (await applied(stack)) >= EVENTS, 'the backlog drained', 900_000);
      const seconds = (performance.now() - startedAt) / 1000;
      const rate = (EVENTS - atStart) / seconds;
      let batches = 0;
      let batchEvents = 0;
      for (const app of apps) {
        batches += await metric(app, 'writebehind_consumer_batch_events_count');
        batchEvents += await metric(app, 'writebehind_consumer_batch_events_sum');
      }
      return {
        bench: `drain ${EVENTS.toLocaleString('en-US')}`,
        variant: `${processes} consumer process${processes === 1 ? '' : 'es'}`,
        unit: 'events/s',
        rate,
        extra: {
          'events/s/process': Math.round(rate / processes),
          'mean batch': Number((batchEvents / batches).toFixed(1)),
          transactions: batches,
          seconds: Number(seconds.toFixed(2)),
        },
      };
    } finally {
      await Promise.all(apps.map((app) => app.stop()));
    }
  } finally {
    await stack.dispose();
  }
}

const rows: Row[] = [];
for (const processes of [1, 2]) rows.push(await drain(processes));
report(`consumer (${EVENTS} events, ${COUNTERS} counters, 12 partitions per topic)`, rows, [
  { label: '2 processes / 1 process events/s', value: (rows[1]?.rate ?? NaN) / (rows[0]?.rate ?? NaN) },
]);
