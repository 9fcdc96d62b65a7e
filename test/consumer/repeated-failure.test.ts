import { encodeEvent } from '@app/events';
import { AppProcess, EventLoad, TestStack, readTopic, scrapeMetrics, waitForLagZero } from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * An error that looks transient but repeats whatever happens (here a trigger in the test's schema that raises
 * SQLSTATE 08P01 for one counter and 40001 for another, as a NUL inside a statement makes Postgres answer 08P01)
 * is retried a bounded number of times; then the chunk is split until the record that keeps failing is alone, it
 * goes to the dead-letter topic, every other record is applied and the partition moves on.
 */
describe('an error that repeats deterministically', () => {
  let stack: TestStack;
  let load: EventLoad;
  let consumer: AppProcess;
  const port = () => Number(stack.env['CONSUMER_PORT']);
  const topics = () => [stack.topics.counters, stack.topics.activities];
  const tag = `rep${Date.now().toString(36)}`;
  const protocol = `${tag}-protocol`;
  const serialization = `${tag}-serialization`;

  beforeAll(async () => {
    stack = await TestStack.create({ partitions: 1 });
    load = new EventLoad(stack.kafka, stack.topics);
    await load.connect();
    await stack.query(`
      CREATE FUNCTION fail_for_some() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.name = '${protocol}' THEN
          RAISE EXCEPTION 'injected protocol violation' USING ERRCODE = '08P01';
        END IF;
        IF NEW.name = '${serialization}' THEN
          RAISE EXCEPTION 'injected serialization failure' USING ERRCODE = '40001';
        END IF;
        RETURN NEW;
      END $$`);
    await stack.query(
      'CREATE TRIGGER fail_for_some BEFORE INSERT ON counters FOR EACH ROW EXECUTE FUNCTION fail_for_some()',
    );
    // One request to one partition while no consumer runs, so that it arrives as one batch.
    const events = Array.from({ length: 40 }, (_, i) =>
      load.counterEvent(i === 10 ? protocol : i === 30 ? serialization : `${tag}-ok-${i % 4}`, 1 + i),
    );
    await load.sendRaw([
      {
        topic: stack.topics.counters,
        messages: events.map((e) => ({ key: e.key, value: encodeEvent(e), partition: 0 })),
      },
    ]);
    consumer = new AppProcess('consumer', {
      ...stack.env,
      CONSUMER_RETRY_MAX_ATTEMPTS: '3',
      CONSUMER_RETRY_MIN_DELAY_MS: '10',
      CONSUMER_RETRY_MAX_DELAY_MS: '100',
      LOG_LEVEL: 'warn',
    });
    await consumer.ready(port());
  });
  afterAll(async () => {
    await consumer?.stop();
    await load?.disconnect();
    await stack?.dispose();
  });

  it('dead-letters the two records, applies the others and moves the partition on', async () => {
    await waitForLagZero(stack.kafka, stack.groupId, topics(), 90_000);

    const rows = await stack.query<{ name: string; value: string }>('SELECT name, value FROM counters ORDER BY name');
    const expected = new Map<string, number>();
    for (let i = 0; i < 40; i++) {
      if (i === 10 || i === 30) continue;
      const name = `${tag}-ok-${i % 4}`;
      expected.set(name, (expected.get(name) ?? 0) + 1 + i);
    }
    expect(rows.map((r) => [r.name, Number(r.value)])).toEqual([...expected].sort(([a], [b]) => (a < b ? -1 : 1)));
    const [stored] = await stack.query<{ next_offset: string }>(
      'SELECT next_offset FROM consumer_offsets WHERE group_id = $1 AND topic = $2 AND partition = 0',
      [stack.groupId, stack.topics.counters],
    );
    expect(Number(stored?.next_offset)).toBe(40);

    const letters = await readTopic(stack.kafka, `${stack.topics.counters}.dlq`);
    expect(
      letters.map((l) => [
        l.key,
        l.headers['dlq-error-class'],
        l.headers['dlq-error-code'],
        l.headers['dlq-original-offset'],
      ]),
    ).toEqual([
      [protocol, 'retries-exhausted', '08P01', '10'],
      [serialization, 'retries-exhausted', '40001', '30'],
    ]);
    for (const letter of letters) expect(Number(letter.headers['dlq-attempts'])).toBeGreaterThanOrEqual(3);

    const metrics = await scrapeMetrics(port());
    expect(
      metrics.sum('writebehind_consumer_dead_letters_total', {
        topic: stack.topics.counters,
        error_class: 'retries-exhausted',
      }),
    ).toBe(2);
  });
});
