// The consumer's workload: a backlog of change events in Kafka (the envelope of libs/events, written out here),
// drained by consumer processes; and the same events as the rows the consumer's SQL takes, for the standalone
// loops that run that SQL without Kafka.
import { randomUUID } from 'node:crypto';
import type { Row } from './report.ts';
import { App, type BenchStack, peakRss, waitUntil } from './stack.ts';

export type Topic = 'counters' | 'activities';

export interface Increment {
  eventId: string;
  name: string;
  by: number;
}

export interface Activity {
  id: string;
  actor: string;
  verb: string;
  object: string;
  occurredAt: string;
  data: Record<string, unknown> | null;
  acceptedAt: number;
}

/**
 * `events` change events: one activity every `activityEvery` (0: none), the others increments of `counters`
 * distinct counters, visited in an order that touches them all before repeating. Event ids are random UUIDs, as
 * the API's are; with `keepIds` they are kept so that the same events can be rebuilt as rows later.
 */
export class Workload {
  readonly events: number;
  readonly counters: number;
  readonly activityEvery: number;
  private readonly ids: string[] | undefined;
  private readonly ts = Date.now();

  constructor(events: number, counters: number, activityEvery: number, keepIds = false) {
    this.events = events;
    this.counters = counters;
    this.activityEvery = activityEvery;
    this.ids = keepIds ? [] : undefined;
  }

  topic(n: number): Topic {
    return this.activityEvery > 0 && n % this.activityEvery === 0 ? 'activities' : 'counters';
  }

  key(n: number): string {
    return this.topic(n) === 'activities' ? `bench-actor-${n % 100}` : `bench:${(n * 7919) % this.counters}`;
  }

  private id(n: number): string {
    if (this.ids === undefined) return `public:${randomUUID()}`;
    return (this.ids[n] ??= `public:${randomUUID()}`);
  }

  increment(n: number): Increment {
    return { eventId: this.id(n), name: this.key(n), by: 1 };
  }

  activity(n: number): Activity {
    return {
      id: this.id(n),
      actor: this.key(n),
      verb: 'viewed',
      object: `post:${n}`,
      occurredAt: new Date(this.ts).toISOString(),
      data: null,
      acceptedAt: this.ts,
    };
  }

  /** The Kafka message of event `n`, as the API publishes it. */
  message(n: number): { key: string; value: string } {
    if (this.topic(n) === 'activities') {
      const a = this.activity(n);
      const value = {
        v: 1,
        id: a.id,
        type: 'activity.recorded',
        key: a.actor,
        ts: this.ts,
        verb: a.verb,
        object: a.object,
        occurredAt: a.occurredAt,
        data: a.data,
      };
      return { key: a.actor, value: JSON.stringify(value) };
    }
    const i = this.increment(n);
    const value = { v: 1, id: i.eventId, type: 'counter.incremented', key: i.name, ts: this.ts, by: i.by };
    return { key: i.name, value: JSON.stringify(value) };
  }
}

export function topicName(stack: BenchStack, topic: Topic): string {
  return stack.env[topic === 'counters' ? 'KAFKA_TOPIC_COUNTERS' : 'KAFKA_TOPIC_ACTIVITIES'] ?? '';
}

/** Writes the workload's events to the stack's topics (not measured: a few produce requests in flight at once). */
export async function produceBacklog(stack: BenchStack, work: Workload): Promise<void> {
  const producer = stack.kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const BATCH = 5000;
  const IN_FLIGHT = 4;
  try {
    let next = 0;
    const sender = async () => {
      for (;;) {
        const from = next;
        if (from >= work.events) return;
        next = Math.min(work.events, from + BATCH);
        const byTopic = new Map<Topic, { key: string; value: string }[]>();
        for (let n = from; n < next; n++) {
          const list = byTopic.get(work.topic(n)) ?? [];
          list.push(work.message(n));
          byTopic.set(work.topic(n), list);
        }
        await producer.sendBatch({
          acks: -1,
          topicMessages: [...byTopic].map(([topic, messages]) => ({ topic: topicName(stack, topic), messages })),
        });
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, sender));
  } finally {
    await producer.disconnect();
  }
}

/** Messages applied so far: the sum of the next offsets the consumers stored in Postgres. */
export async function applied(stack: BenchStack): Promise<number> {
  const { rows } = await stack.pg.query<{ n: string }>(
    `SELECT coalesce(sum(next_offset), 0) AS n FROM "${stack.id}".consumer_offsets`,
  );
  return Number(rows[0]?.n ?? 0);
}

export interface Drained {
  rate: number;
  seconds: number;
  transactions: number;
  meanBatch: number;
  meanBatchByTopic: Record<Topic, number>;
  /** The most resident memory seen in any consumer process while it drained, MB. */
  rssMb: number;
}

/**
 * Starts `processes` consumers on the stack's backlog and measures from the moment all of them are ready (in the
 * group) to the last Postgres commit: events applied per second (wall clock), mean events per transaction.
 */
export async function drain(
  stack: BenchStack,
  work: Workload,
  processes: number,
  settings: Record<string, string> = {},
): Promise<Drained> {
  const apps = await Promise.all(
    Array.from({ length: processes }, () => App.start('consumer', { ...stack.env, ...settings })),
  );
  try {
    const startedAt = performance.now();
    const atStart = await applied(stack);
    if (atStart >= work.events * 0.8)
      throw new Error('the backlog was mostly drained before all consumers ran: raise EVENTS');
    let rssMb = 0;
    const watch = apps.map((app) =>
      peakRss(app, () => waitUntil(async () => (await applied(stack)) >= work.events, 'the backlog drained', 900_000)),
    );
    for (const { rssMb: mb } of await Promise.all(watch)) rssMb = Math.max(rssMb, mb);
    const seconds = (performance.now() - startedAt) / 1000;
    const byTopic = async (topic: Topic, part: 'count' | 'sum') => {
      let total = 0;
      for (const app of apps) {
        total += await app.metric(`writebehind_consumer_batch_events_${part}`, `topic="${topicName(stack, topic)}"`);
      }
      return total;
    };
    const counts = { counters: await byTopic('counters', 'count'), activities: await byTopic('activities', 'count') };
    const sums = { counters: await byTopic('counters', 'sum'), activities: await byTopic('activities', 'sum') };
    return {
      rate: (work.events - atStart) / seconds,
      seconds,
      transactions: counts.counters + counts.activities,
      meanBatch: (sums.counters + sums.activities) / (counts.counters + counts.activities),
      meanBatchByTopic: {
        counters: counts.counters > 0 ? sums.counters / counts.counters : 0,
        activities: counts.activities > 0 ? sums.activities / counts.activities : 0,
      },
      rssMb,
    };
  } finally {
    await Promise.all(apps.map((app) => app.stop()));
  }
}

export function drainRow(bench: string, variant: string, d: Drained, processes = 1): Row {
  return {
    bench,
    variant,
    unit: 'events/s',
    rate: d.rate,
    extra: {
      ...(processes > 1 ? { 'events/s/process': Math.round(d.rate / processes) } : {}),
      'mean batch': Number(d.meanBatch.toFixed(1)),
      transactions: d.transactions,
      seconds: Number(d.seconds.toFixed(1)),
      'RSS MB': Math.round(d.rssMb),
    },
  };
}
