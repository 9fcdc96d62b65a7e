import { createTopicsAndWait } from '@app/kafka';
import {
  AppProcess,
  EventLoad,
  TestStack,
  consumerLag,
  runCli,
  scrapeMetrics,
  waitFor,
  waitForLagZero,
} from '@app/testing';
import { ConfigResourceTypes } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

async function deleteTopics(stack: TestStack): Promise<void> {
  const admin = stack.kafka.admin();
  await admin.connect();
  try {
    await admin.deleteTopics({ topics: stack.allTopics });
    await waitFor(async () => !(await admin.listTopics()).some((t) => stack.allTopics.includes(t)), {
      description: 'the topics gone',
    });
  } finally {
    await admin.disconnect();
  }
}

/** Deletes the stack's topics and creates them again as they were (partitions, retention.ms and segment.ms). */
async function recreateTopics(stack: TestStack): Promise<void> {
  const admin = stack.kafka.admin();
  await admin.connect();
  try {
    const { topics: metadata } = await admin.fetchTopicMetadata({ topics: stack.allTopics });
    const { resources } = await admin.describeConfigs({
      resources: stack.allTopics.map((name) => ({
        type: ConfigResourceTypes.TOPIC,
        name,
        configNames: ['retention.ms', 'segment.ms'],
      })),
      includeSynonyms: false,
    });
    const specs = stack.allTopics.map((topic) => ({
      topic,
      numPartitions: metadata.find((t) => t.name === topic)?.partitions.length ?? 1,
      configEntries: (resources.find((r) => r.resourceName === topic)?.configEntries ?? []).map((e) => ({
        name: e.configName,
        value: e.configValue,
      })),
    }));
    await deleteTopics(stack);
    await createTopicsAndWait(admin, specs);
  } finally {
    await admin.disconnect();
  }
}

/**
 * The broker's data is lost and the topics are recreated (docs/runbook.md, "Kafka broker lost and back"): the new
 * logs start again at offset 0, below the offsets Postgres stored for the old ones. Nothing of the new logs was
 * applied, so nothing may be skipped: the consumer holds those partitions (no apply, no Kafka commit), says so in
 * readiness, a metric and its log, until an operator re-baselines them with `wb offsets rebaseline`; then it
 * applies the new events. Two partitions; the consumer runs throughout.
 */
describe('change-event topics recreated under a running consumer', () => {
  let stack: TestStack;
  let load: EventLoad;
  let consumer: AppProcess;
  const port = () => Number(stack.env['CONSUMER_PORT']);
  const topics = () => [stack.topics.counters, stack.topics.activities];
  const tag = `rec${Date.now().toString(36)}`;
  const counters = async () =>
    new Map(
      (await stack.query<{ name: string; value: string }>('SELECT name, value FROM counters')).map((r) => [
        r.name,
        Number(r.value),
      ]),
    );
  const stored = async () =>
    (
      await stack.query<{ partition: number; next_offset: string }>(
        'SELECT partition, next_offset FROM consumer_offsets WHERE group_id = $1 AND topic = $2 ORDER BY partition',
        [stack.groupId, stack.topics.counters],
      )
    ).map((r) => [r.partition, Number(r.next_offset)]);
  const held = async () =>
    (await scrapeMetrics(port())).sum('writebehind_consumer_held_partitions', { topic: stack.topics.counters });
  const readiness = async () => {
    const response = await fetch(`http://127.0.0.1:${port()}/health/ready`);
    return { status: response.status, text: await response.text() };
  };

  beforeAll(async () => {
    stack = await TestStack.create({ partitions: 2 });
    load = new EventLoad(stack.kafka, stack.topics);
    await load.connect();
    consumer = new AppProcess('consumer', { ...stack.env, LOG_LEVEL: 'info' });
    await consumer.ready(port());
  });
  afterAll(async () => {
    await consumer?.stop();
    await load?.disconnect();
    await stack?.dispose();
  });

  it('holds the partitions until they are re-baselined, then applies every new event once', async () => {
    // Before the loss: 30 events on partition 0 and 20 on partition 1, applied.
    await load.send(
      Array.from({ length: 30 }, (_, i) => load.counterEvent(`${tag}-old`, 1 + i)),
      0,
    );
    await load.send(
      Array.from({ length: 20 }, (_, i) => load.counterEvent(`${tag}-old`, 1 + i)),
      1,
    );
    await waitForLagZero(stack.kafka, stack.groupId, topics());
    expect(await stored()).toEqual([
      [0, 30],
      [1, 20],
    ]);

    // The loss: every topic of the system deleted and created again, here by other means than `wb topics` (which
    // would record the holds itself, see below): the consumer has to notice.
    await recreateTopics(stack);

    // New writes land at offsets 0-4 of partition 0, below the 30 stored for the old log.
    const fresh = Array.from({ length: 5 }, (_, i) => load.counterEvent(`${tag}-new`, 100 + i));
    await load.send(fresh, 0);
    await waitFor(
      async () => {
        const [lag] = (await consumerLag(stack.kafka, stack.groupId, [stack.topics.counters])).filter(
          (l) => l.partition === 0,
        );
        return (await held()) > 0 || lag?.lag === 0;
      },
      { timeoutMs: 60_000, description: 'the consumer to hold the partitions, or to skip the new events' },
    );

    // Not skipped: nothing of the new log is committed in Kafka or applied, and Postgres' offsets are untouched.
    const [partition0] = (await consumerLag(stack.kafka, stack.groupId, [stack.topics.counters])).filter(
      (l) => l.partition === 0,
    );
    expect(partition0?.lag).toBe(5);
    expect((await counters()).get(`${tag}-new`)).toBeUndefined();
    expect(await stored()).toEqual([
      [0, 30],
      [1, 20],
    ]);
    // Held: both partitions of the recreated topic (partition 1's stored 20 is beyond its end, 0, as well).
    await waitFor(async () => (await held()) === 2, { timeoutMs: 30_000, description: 'both partitions held' });
    const notReady = await readiness();
    expect(notReady.status).toBe(503);
    expect(notReady.text).toMatch(/wb offsets rebaseline/);
    expect(consumer.text).toMatch(/beyond the end of the log/);

    // `wb lag` tells the truth: 5 events waiting on partition 0, not 0.
    const lag = await runCli(stack.env, ['lag', '--topic', 'counters', '--json']);
    const partitions = lag.json<{ partitions: { partition: number; lagMessages: number }[] }>().partitions;
    expect(partitions.map((p) => [p.partition, p.lagMessages])).toEqual([
      [0, 5],
      [1, 0],
    ]);

    // The dry run changes nothing.
    const plan = await runCli(stack.env, ['offsets', 'rebaseline', '--topic', 'counters', '--json']);
    expect(plan.code, plan.output).toBe(0);
    expect(plan.json<{ plan: { partition: number; from: number; to: number; toApply: number }[] }>().plan).toEqual([
      expect.objectContaining({ partition: 0, from: 30, to: 0, toApply: 5 }),
      expect.objectContaining({ partition: 1, from: 20, to: 0, toApply: 0 }),
    ]);
    expect(await stored()).toEqual([
      [0, 30],
      [1, 20],
    ]);

    const done = await runCli(stack.env, [
      'offsets',
      'rebaseline',
      '--topic',
      'counters',
      '--execute',
      '--actor',
      'test',
    ]);
    expect(done.code, done.output).toBe(0);
    await waitForLagZero(stack.kafka, stack.groupId, topics());
    await waitFor(async () => (await counters()).get(`${tag}-new`) === 510, {
      timeoutMs: 60_000,
      description: 'the new events applied',
    });
    expect(await stored()).toEqual([
      [0, 5],
      [1, 0],
    ]);
    await waitFor(async () => (await readiness()).status === 200, { description: 'ready again' });
    expect(await held()).toBe(0);

    // Later writes are applied as usual, and nothing twice.
    await load.send([load.counterEvent(`${tag}-new`, 1000)], 1);
    await waitForLagZero(stack.kafka, stack.groupId, topics());
    await waitFor(async () => (await counters()).get(`${tag}-new`) === 1510, { description: 'the later write' });
    expect((await counters()).get(`${tag}-old`)).toBe(465 + 210);

    const audit = await stack.query<{ actor: string; command: string; outcome: string }>(
      'SELECT actor, command, outcome FROM ops_audit ORDER BY id',
    );
    expect(audit.map((a) => [a.actor, a.command, a.outcome.split(':')[0]])).toEqual([
      [expect.any(String), 'offsets rebaseline', 'dry-run'],
      ['test', 'offsets rebaseline', 'executed'],
    ]);
  });
});

/**
 * The same loss with every consumer down, the topics recreated by `wb topics` as the runbook says, and the new log
 * already longer than the offset stored for the old one when a consumer starts: no offset comparison can tell then,
 * so `wb topics` records the holds when it creates a topic that has stored offsets.
 */
describe('change-event topics recreated by `wb topics` while the consumers are down', () => {
  let stack: TestStack;
  let load: EventLoad;
  const port = () => Number(stack.env['CONSUMER_PORT']);
  const topics = () => [stack.topics.counters, stack.topics.activities];
  const tag = `recd${Date.now().toString(36)}`;

  beforeAll(async () => {
    stack = await TestStack.create({ partitions: 1 });
    load = new EventLoad(stack.kafka, stack.topics);
    await load.connect();
  });
  afterAll(async () => {
    await load?.disconnect();
    await stack?.dispose();
  });

  it('holds the partition from the start and applies the whole new log after the re-baseline', async () => {
    let consumer = new AppProcess('consumer', { ...stack.env, LOG_LEVEL: 'warn' });
    await consumer.ready(port());
    await load.send(Array.from({ length: 30 }, () => load.counterEvent(`${tag}-old`, 1)));
    await waitForLagZero(stack.kafka, stack.groupId, topics());
    await consumer.stop();

    await deleteTopics(stack);
    const created = await runCli(stack.env, ['topics']);
    expect(created.code, created.output).toBe(0);
    // 40 new events: the new log ends beyond the 30 stored for the old one.
    await load.send(Array.from({ length: 40 }, () => load.counterEvent(`${tag}-new`, 1)));

    consumer = new AppProcess('consumer', { ...stack.env, LOG_LEVEL: 'warn' });
    try {
      await waitFor(
        async () => {
          const response = await fetch(`http://127.0.0.1:${port()}/health/ready`).catch(() => undefined);
          const [lag] = await consumerLag(stack.kafka, stack.groupId, [stack.topics.counters]);
          return (
            (response !== undefined && (await response.text()).includes('wb offsets rebaseline')) || lag?.lag === 0
          );
        },
        { timeoutMs: 60_000, description: 'the consumer to hold the partition, or to skip the new events' },
      );
      const [lag] = await consumerLag(stack.kafka, stack.groupId, [stack.topics.counters]);
      expect(lag?.lag).toBe(40);
      expect(await stack.query('SELECT 1 FROM counters WHERE name = $1', [`${tag}-new`])).toEqual([]);
      expect(created.stdout).toMatch(new RegExp(`HELD ${stack.topics.counters} for group ${stack.groupId}`));

      const done = await runCli(stack.env, ['offsets', 'rebaseline', '--topic', 'counters', '--execute']);
      expect(done.code, done.output).toBe(0);
      await waitForLagZero(stack.kafka, stack.groupId, topics());
      await waitFor(
        async () => {
          const [row] = await stack.query<{ value: string }>('SELECT value FROM counters WHERE name = $1', [
            `${tag}-new`,
          ]);
          return Number(row?.value) === 40;
        },
        { timeoutMs: 60_000, description: 'all 40 new events applied' },
      );
      await consumer.ready(port());
    } finally {
      await consumer.stop();
    }
  });
});
