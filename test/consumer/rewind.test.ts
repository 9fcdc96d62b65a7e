import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AppProcess,
  EventLoad,
  TestStack,
  dumpSchema,
  restoreDump,
  scrapeMetrics,
  waitFor,
  waitForLagZero,
} from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Postgres' offset is the truth: when Kafka's committed offsets are ahead of it (Postgres restored from a
 * backup), the consumer seeks back by itself and re-applies exactly what is missing, without an operator.
 */
describe('consumer behind Kafka after a Postgres restore', () => {
  let stack: TestStack;
  let load: EventLoad;
  const dir = mkdtempSync(join(tmpdir(), 'wb-rewind-'));
  const port = () => Number(stack.env['CONSUMER_PORT']);

  beforeAll(async () => {
    stack = await TestStack.create();
    load = new EventLoad(stack.kafka, stack.topics);
    await load.connect();
  });
  afterAll(async () => {
    await load.disconnect();
    await stack.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  const totals = async () =>
    new Map(
      (await stack.query<{ name: string; value: string }>('SELECT name, value FROM counters')).map((r) => [
        r.name,
        Number(r.value),
      ]),
    );

  it('seeks back to the applied offset and ends exact', async () => {
    const topics = [stack.topics.counters, stack.topics.activities];
    let consumer = new AppProcess('consumer', { ...stack.env, LOG_LEVEL: 'warn' });
    await consumer.ready(port());
    const first = Array.from({ length: 600 }, (_, i) => load.counterEvent(`c${i % 7}`, 1 + (i % 3)));
    await load.send(first);
    await waitForLagZero(stack.kafka, stack.groupId, topics);
    const dump = join(dir, 'before.dump');
    dumpSchema(stack.env['DATABASE_URL'] ?? '', stack.schema, dump);

    const second = Array.from({ length: 900 }, (_, i) => load.counterEvent(`c${i % 7}`, 2));
    await load.send(second);
    await waitForLagZero(stack.kafka, stack.groupId, topics);
    await consumer.stop();

    // Postgres comes back from the backup: Kafka's committed offsets are now ahead of its applied offsets.
    await stack.query(`DROP SCHEMA "${stack.schema}" CASCADE`);
    restoreDump(stack.env['DATABASE_URL'] ?? '', dump);

    consumer = new AppProcess('consumer', { ...stack.env, LOG_LEVEL: 'warn' });
    await consumer.ready(port());
    const expected = load.expectedCounters();
    await waitFor(
      async () => {
        const actual = await totals();
        return [...expected].every(([name, value]) => actual.get(name) === value) && actual.size === expected.size;
      },
      { timeoutMs: 60_000, description: 'Postgres to equal the oracle again' },
    );
    const metrics = await scrapeMetrics(port());
    expect(metrics.sum('writebehind_consumer_offset_gaps_total', { outcome: 'rewound' })).toBeGreaterThan(0);
    expect(metrics.sum('writebehind_consumer_offset_gaps_total', { outcome: 'lost' })).toBe(0);
    const ledger = await stack.query<{ n: number }>('SELECT count(*)::int AS n FROM processed_events');
    expect(ledger[0]?.n).toBe(1500);
    await consumer.stop();
  });
});
