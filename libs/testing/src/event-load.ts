import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ActivityRecorded, type CounterIncremented, encodeEvent } from '@app/events';
import type { Kafka, Message, Producer } from 'kafkajs';

export interface EventLoadOptions {
  /** Counter names the load spreads over (keys, hence partitions). Default 40. */
  counters?: number;
  /** Actors the activities spread over. Default 10. */
  actors?: number;
  /** Events per produce request. Default 200. */
  batch?: number;
  /** One activity per this many counter events (0: none). Default 10. */
  activityEvery?: number;
  /** Every this many events, one already acknowledged event is sent again, same id (a producer retry). Default 25. */
  duplicateEvery?: number;
  /** Pause between two produce requests, so a test's load leaves the two shared cores some air. Default 20 ms. */
  pauseMs?: number;
  /** Called before each event is produced (e.g. to add it to the Redis view's pending set, as the API does). */
  beforeSend?: (events: CounterIncremented[]) => Promise<void>;
}

/**
 * Produces change events straight to Kafka (idempotent producer, acks=all), as the API would, and keeps the oracle
 * of G2: an event is acknowledged once Kafka acked its produce request, and a counter's expected value is the sum
 * of the deltas of its distinct acknowledged event ids. A failed request is sent again with the same ids until it
 * is acknowledged (it may have landed the first time), so the oracle never misses an event that is in Kafka.
 */
export class EventLoad {
  readonly counterNames: string[];
  readonly actors: string[];
  private readonly producer: Producer;
  private readonly acked = new Map<string, CounterIncremented>();
  /** The same events as a list, to pick duplicates from. */
  private readonly ackedList: CounterIncremented[] = [];
  private readonly ackedActivities = new Map<string, ActivityRecorded>();
  private readonly options: Required<Omit<EventLoadOptions, 'beforeSend'>> & Pick<EventLoadOptions, 'beforeSend'>;
  private sent = 0;
  private running: Promise<void> | undefined;
  private stopRequested = false;

  constructor(
    kafka: Kafka,
    private readonly topics: { counters: string; activities: string },
    options: EventLoadOptions = {},
  ) {
    this.options = {
      counters: 40,
      actors: 10,
      batch: 200,
      activityEvery: 10,
      duplicateEvery: 25,
      pauseMs: 20,
      ...options,
    };
    const tag = randomUUID().slice(0, 8);
    this.counterNames = Array.from({ length: this.options.counters }, (_, i) => `load:${tag}:c${i}`);
    this.actors = Array.from({ length: this.options.actors }, (_, i) => `actor-${tag}-${i}`);
    this.producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  }

  async connect(): Promise<void> {
    await this.producer.connect();
  }

  async disconnect(): Promise<void> {
    await this.stop();
    await this.producer.disconnect();
  }

  /** Acknowledged counter events so far. */
  get ackedCount(): number {
    return this.acked.size;
  }

  counterEvent(name: string, by: number, id: string = randomUUID()): CounterIncremented {
    return { v: 1, id, type: 'counter.incremented', key: name, ts: Date.now(), by };
  }

  activityEvent(actor: string, id: string = randomUUID(), data: ActivityRecorded['data'] = null): ActivityRecorded {
    return {
      v: 1,
      id,
      type: 'activity.recorded',
      key: actor,
      ts: Date.now(),
      verb: 'viewed',
      object: `post:${id.slice(0, 8)}`,
      occurredAt: new Date().toISOString(),
      data,
    };
  }

  /** Produces the events (keyed by counter name / actor, or to `partition`) and records them as acknowledged. */
  async send(events: (CounterIncremented | ActivityRecorded)[], partition?: number): Promise<void> {
    const counters = events.filter((e): e is CounterIncremented => e.type === 'counter.incremented');
    const activities = events.filter((e): e is ActivityRecorded => e.type === 'activity.recorded');
    const toMessage = (e: CounterIncremented | ActivityRecorded): Message => ({
      key: e.key,
      value: encodeEvent(e),
      ...(partition === undefined ? {} : { partition }),
    });
    const topicMessages = [
      { topic: this.topics.counters, messages: counters.map(toMessage) },
      { topic: this.topics.activities, messages: activities.map(toMessage) },
    ].filter((t) => t.messages.length > 0);
    await this.sendRaw(topicMessages);
    for (const e of counters) {
      if (this.acked.has(e.id)) continue;
      this.acked.set(e.id, e);
      this.ackedList.push(e);
    }
    for (const e of activities) if (!this.ackedActivities.has(e.id)) this.ackedActivities.set(e.id, e);
  }

  /** Produces arbitrary messages (acks=all), retrying until acknowledged. Nothing is added to the oracle. */
  async sendRaw(topicMessages: { topic: string; messages: Message[] }[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.producer.sendBatch({ topicMessages, acks: -1 });
        return;
      } catch (error) {
        if (attempt >= 20) throw error;
        await sleep(250);
      }
    }
  }

  /** Starts producing in the background until stop(). */
  start(): void {
    this.stopRequested = false;
    this.running ??= this.loop().finally(() => {
      this.running = undefined;
    });
  }

  /** Stops the background load; resolves when its last request was acknowledged. */
  async stop(): Promise<void> {
    this.stopRequested = true;
    await this.running;
  }

  /** Produces `count` more events in the background loop's shape, then returns (a bounded burst). */
  async produce(count: number): Promise<void> {
    const target = this.sent + count;
    while (this.sent < target) await this.sendOne(Math.min(this.options.batch, target - this.sent));
  }

  private async loop(): Promise<void> {
    while (!this.stopRequested) {
      await this.sendOne(this.options.batch);
      if (this.options.pauseMs > 0) await sleep(this.options.pauseMs);
    }
  }

  private async sendOne(size: number): Promise<void> {
    const events: (CounterIncremented | ActivityRecorded)[] = [];
    const known = this.ackedList;
    for (let i = 0; i < size; i++) {
      this.sent++;
      if (this.options.duplicateEvery > 0 && this.sent % this.options.duplicateEvery === 0 && known.length > 0) {
        events.push(known[Math.floor(Math.random() * known.length)] as CounterIncremented);
      } else if (this.options.activityEvery > 0 && this.sent % this.options.activityEvery === 0) {
        events.push(this.activityEvent(this.actors[Math.floor(Math.random() * this.actors.length)] ?? 'actor'));
      } else {
        const name = this.counterNames[Math.floor(Math.random() * this.counterNames.length)] ?? 'load';
        // Deltas from -3 to 9, never 0: a lost or doubled event shows in the sum.
        const by = Math.floor(Math.random() * 12) - 3 || 10;
        events.push(this.counterEvent(name, by));
      }
    }
    if (this.options.beforeSend) {
      await this.options.beforeSend(events.filter((e): e is CounterIncremented => e.type === 'counter.incremented'));
    }
    await this.send(events);
  }

  /** The oracle: per counter, the sum of the deltas of its distinct acknowledged event ids. */
  expectedCounters(): Map<string, number> {
    const sums = new Map<string, number>();
    for (const e of this.acked.values()) sums.set(e.key, (sums.get(e.key) ?? 0) + e.by);
    return sums;
  }

  /** The ids of the distinct acknowledged activities. */
  expectedActivityIds(): string[] {
    return [...this.ackedActivities.keys()].sort();
  }
}
