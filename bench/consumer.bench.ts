// Consumer throughput against its ceilings, on the same events: a backlog of change events is produced to Kafka,
// then drained by one consumer process (PROCESSES=1,2 to add a run with two); then the same events, cut into the
// same per-partition batches (of the consumer's measured mean size), are applied by a standalone loop that runs the
// consumer's own transaction SQL (the built CounterRepository, ActivityRepository and OffsetRepository: ledger +
// aggregated upserts, activity inserts, the partition's offset) with the same concurrency, without Kafka, decoding
// or the Redis view; then the same rows are written with COPY into the ledger and the activities table (the
// ceiling: what Postgres takes when it only appends). Events/s from the first to the last commit.
// Run: npm run bench -- consumer   (EVENTS=500000 COUNTERS=1000 ACTIVITY_EVERY=10 PROCESSES=1; CONSUMER_* variables
// are passed to the consumers)
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import pgPromise from 'pg-promise';
import { from as copyFrom } from 'pg-copy-streams';
import { type Activity, type Increment, type Topic, Workload, drain, drainRow, produceBacklog } from './lib/drain.ts';
import { type Row, Scenario, ratio } from './lib/report.ts';
import { BenchStack, envNumber, envNumbers, importBuilt, shared } from './lib/stack.ts';

const EVENTS = envNumber('EVENTS', 500_000);
const COUNTERS = envNumber('COUNTERS', 1000);
const ACTIVITY_EVERY = envNumber('ACTIVITY_EVERY', 10);
const PROCESSES = envNumbers('PROCESSES', [1]);
/** The consumer's CONSUMER_PARTITIONS_CONCURRENTLY (default 3): the standalone loops use as many connections. */
const CONCURRENCY = envNumber('CONSUMER_PARTITIONS_CONCURRENTLY', 3);
const PARTITIONS = 12;
const consumerSettings = Object.fromEntries(
  Object.entries(process.env).filter((e): e is [string, string] => e[0].startsWith('CONSUMER_') && e[1] !== undefined),
);

const scenario = new Scenario(
  'consumer',
  `Consumer: events applied per second vs the same SQL without Kafka vs COPY (${EVENTS.toLocaleString('en-US')} events)`,
  { EVENTS, COUNTERS, ACTIVITY_EVERY, PROCESSES: PROCESSES.join(','), CONCURRENCY, PARTITIONS },
  ['EVENTS', 'COUNTERS', 'ACTIVITY_EVERY', 'PROCESSES'],
);

/** The pieces of the built consumer the standalone loop runs (dist/apps/consumer/libs/store). */
type Tx = unknown;
interface Store {
  CounterRepository: new (database: unknown) => {
    applyIncrements(t: Tx, increments: Increment[], source: 'consumer'): Promise<unknown>;
  };
  ActivityRepository: new (database: unknown) => { insert(t: Tx, activities: Activity[]): Promise<unknown> };
  OffsetRepository: new (database: unknown) => {
    advance(t: Tx, groupId: string, topic: string, partition: number, nextOffset: number): Promise<void>;
  };
}

interface Chunk {
  topic: Topic;
  partition: number;
  events: number[];
  /** The partition's next offset once this chunk is applied. */
  end: number;
}

/** The events, per topic-partition (keys never share a partition, as in Kafka), cut into chunks of `size`. */
function chunks(work: Workload, size: Record<Topic, number>): Chunk[][] {
  const byPartition = new Map<string, { topic: Topic; partition: number; events: number[] }>();
  for (let n = 0; n < work.events; n++) {
    const topic = work.topic(n);
    const partition = hash(work.key(n)) % PARTITIONS;
    const id = `${topic}/${partition}`;
    let entry = byPartition.get(id);
    if (!entry) byPartition.set(id, (entry = { topic, partition, events: [] }));
    entry.events.push(n);
  }
  return [...byPartition.values()].map(({ topic, partition, events }) => {
    const list: Chunk[] = [];
    const step = Math.max(1, Math.round(size[topic]));
    for (let i = 0; i < events.length; i += step) {
      const slice = events.slice(i, i + step);
      list.push({ topic, partition, events: slice, end: i + slice.length });
    }
    return list;
  });
}

function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** Runs `work` on the partitions' chunks with CONCURRENCY workers, one partition at a time per worker. */
async function runPartitions(partitions: Chunk[][], work: (chunk: Chunk) => Promise<void>): Promise<number> {
  const started = performance.now();
  const workers = Array.from({ length: CONCURRENCY }, (_, w) => partitions.filter((_, i) => i % CONCURRENCY === w));
  await Promise.all(
    workers.map(async (mine) => {
      // Round-robin over this worker's partitions, as kafkajs hands out batches of several partitions.
      const cursors = mine.map(() => 0);
      for (let progressed = true; progressed;) {
        progressed = false;
        for (const [i, list] of mine.entries()) {
          const chunk = list[cursors[i] ?? 0];
          if (!chunk) continue;
          cursors[i] = (cursors[i] ?? 0) + 1;
          progressed = true;
          await work(chunk);
        }
      }
    }),
  );
  return (performance.now() - started) / 1000;
}

const rows: Row[] = [];
const work = new Workload(EVENTS, COUNTERS, ACTIVITY_EVERY, true);
let batchSize: Record<Topic, number> = { counters: 1, activities: 1 };

for (const processes of PROCESSES) {
  const stack = await BenchStack.create(PARTITIONS);
  try {
    await produceBacklog(stack, work);
    const drained = await drain(stack, work, processes, consumerSettings);
    if (processes === PROCESSES[0]) batchSize = drained.meanBatchByTopic;
    rows.push(drainRow('apply', `consumer, ${processes} process${processes === 1 ? '' : 'es'}`, drained, processes));
  } finally {
    await stack.dispose();
  }
}

const sqlStack = await BenchStack.create(PARTITIONS);
try {
  const store = await importBuilt<Store>('consumer', 'libs/store/src/index.js');
  const counters = new store.CounterRepository(undefined);
  const activities = new store.ActivityRepository(undefined);
  const offsets = new store.OffsetRepository(undefined);
  const pgp = pgPromise({ schema: sqlStack.id, noWarnings: true });
  const db = pgp({ connectionString: shared.DATABASE_URL, max: CONCURRENCY });
  const copyPool = new pg.Pool({ connectionString: shared.DATABASE_URL, max: CONCURRENCY });
  try {
    const partitions = chunks(work, batchSize);
    const transactions = partitions.reduce((sum, list) => sum + list.length, 0);
    const group = `${sqlStack.id}-group`;
    const sqlSeconds = await runPartitions(partitions, async (chunk) => {
      const topic = `${sqlStack.id}.${chunk.topic}`;
      await db.tx(async (t) => {
        if (chunk.topic === 'counters') {
          await counters.applyIncrements(
            t,
            chunk.events.map((n) => work.increment(n)),
            'consumer',
          );
        } else {
          await activities.insert(
            t,
            chunk.events.map((n) => work.activity(n)),
          );
        }
        await offsets.advance(t, group, topic, chunk.partition, chunk.end);
      });
    });
    rows.push({
      bench: 'apply',
      variant: 'same SQL, same batches, no Kafka',
      unit: 'events/s',
      rate: EVENTS / sqlSeconds,
      extra: {
        'mean batch': Number((EVENTS / transactions).toFixed(1)),
        transactions,
        seconds: Number(sqlSeconds.toFixed(1)),
      },
    });

    // The ceiling: the same rows appended with COPY (the ledger rows of the increments, the activities), no upsert.
    await db.none('TRUNCATE processed_events, activities, counters, consumer_offsets');
    const copySeconds = await runPartitions(
      // One COPY per partition and topic, as many at once as the loops above.
      partitions.map((list) => [{ ...list[0]!, events: list.flatMap((c) => c.events), end: list.at(-1)?.end ?? 0 }]),
      async (chunk) => {
        const connection = await copyPool.connect();
        try {
          const text =
            chunk.topic === 'counters'
              ? `COPY "${sqlStack.id}".processed_events (event_id, source) FROM STDIN`
              : `COPY "${sqlStack.id}".activities (id, actor, verb, object, occurred_at, data, accepted_at) FROM STDIN`;
          const lines = function* () {
            for (const n of chunk.events) {
              if (chunk.topic === 'counters') {
                yield `${work.increment(n).eventId}\tconsumer\n`;
              } else {
                const a = work.activity(n);
                yield `${a.id}\t${a.actor}\t${a.verb}\t${a.object}\t${a.occurredAt}\t\\N\t${new Date(a.acceptedAt).toISOString()}\n`;
              }
            }
          };
          await pipeline(Readable.from(lines()), connection.query(copyFrom(text)));
        } finally {
          connection.release();
        }
      },
    );
    rows.push({
      bench: 'apply',
      variant: 'COPY of the same rows (ceiling)',
      unit: 'events/s',
      rate: EVENTS / copySeconds,
      extra: { seconds: Number(copySeconds.toFixed(1)) },
    });
  } finally {
    await db.$pool.end();
    await copyPool.end();
  }
} finally {
  await sqlStack.dispose();
}

const rate = (variant: string) => rows.find((r) => r.variant.startsWith(variant))?.rate ?? NaN;
await scenario.report(
  rows,
  [
    ratio('consumer / standalone upsert loop events/s', rate('consumer, 1') / rate('same SQL'), {
      op: '>=',
      threshold: 0.8,
    }),
    ratio('consumer / COPY events/s', rate('consumer, 1') / rate('COPY')),
    ratio('standalone upsert loop / COPY events/s', rate('same SQL') / rate('COPY')),
    ...(PROCESSES.includes(2)
      ? [ratio('2 processes / 1 process events/s', rate('consumer, 2') / rate('consumer, 1'))]
      : []),
  ],
  [
    `The consumer's batches came out at ${batchSize.counters.toFixed(0)} counter events and ${batchSize.activities.toFixed(0)} ` +
      `activities per transaction (means); the standalone loop used chunks of those sizes. Its events: ` +
      `${COUNTERS.toLocaleString('en-US')} counters, one activity in ${ACTIVITY_EVERY}.`,
  ],
);
