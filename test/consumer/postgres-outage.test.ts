import { migrate } from '@app/db';
import {
  AppProcess,
  EventLoad,
  PostgresServer,
  TestStack,
  readTopic,
  scrapeMetrics,
  waitFor,
  waitForLagZero,
} from '@app/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const OUTAGE_MS = 60_000;

/**
 * G5 for a transient failure: Postgres (a private server, so the shared one is never touched) is stopped for a
 * minute under load. The consumer retries with backoff and dead-letters nothing; /metrics shows the retries and
 * /health/ready is false meanwhile; when Postgres is back the backlog drains and the totals are exact (G2).
 */
describe('Postgres stopped for a minute under load', () => {
  let stack: TestStack;
  let postgres: PostgresServer;
  let load: EventLoad;
  let consumer: AppProcess;
  const port = () => Number(stack.env['CONSUMER_PORT']);
  const topics = () => [stack.topics.counters, stack.topics.activities];

  async function query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    const client = new pg.Client({ connectionString: postgres.url });
    await client.connect();
    try {
      await client.query(`SET search_path TO "${stack.schema}"`);
      return (await client.query<R>(sql, params)).rows;
    } finally {
      await client.end();
    }
  }
  const readiness = async () => {
    const response = await fetch(`http://127.0.0.1:${port()}/health/ready`);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    stack = await TestStack.create();
    postgres = await PostgresServer.start();
    await migrate({ databaseUrl: postgres.url, schema: stack.schema });
    load = new EventLoad(stack.kafka, stack.topics, { batch: 100, pauseMs: 50 });
    await load.connect();
    consumer = new AppProcess('consumer', {
      ...stack.env,
      DATABASE_URL: postgres.url,
      CONSUMER_RETRY_MAX_DELAY_MS: '1000',
      CONSUMER_STALL_UNREADY_MS: '2000',
      LOG_LEVEL: 'warn',
    });
    await consumer.ready(port());
  });
  afterAll(async () => {
    await consumer?.stop();
    await load?.disconnect();
    await postgres?.dispose();
    await stack?.dispose();
  });

  it('retries without dead letters, is not ready meanwhile, then drains to exact totals', async () => {
    load.start();
    await waitFor(async () => (await scrapeMetrics(port())).sum('writebehind_consumer_events_applied_total') > 1000, {
      description: 'the consumer applying',
    });

    await postgres.stop('fast');
    const stoppedAt = Date.now();
    let notReady: Record<string, unknown> | undefined;
    let retrying = 0;
    // Load keeps coming for the whole outage; meanwhile readiness and metrics are watched.
    await waitFor(
      async () => {
        const ready = await readiness();
        if (ready.status === 503) notReady ??= ready.body;
        const metrics = await scrapeMetrics(port());
        retrying = Math.max(retrying, metrics.sum('writebehind_consumer_retrying_partitions'));
        return Date.now() - stoppedAt >= OUTAGE_MS && notReady !== undefined && retrying > 0;
      },
      { timeoutMs: OUTAGE_MS + 60_000, intervalMs: 500, description: 'a minute of outage, seen as such' },
    );
    const during = await scrapeMetrics(port());
    expect(during.sum('writebehind_consumer_retries_total', { dependency: 'postgres' })).toBeGreaterThan(0);
    expect(during.sum('writebehind_consumer_dead_letters_total')).toBe(0);
    expect(notReady).toMatchObject({ status: 'error', error: { postgres: { status: 'down' } } });
    expect(consumer.running).toBe(true);

    await postgres.restart();
    await waitFor(async () => (await readiness()).status === 200, {
      timeoutMs: 60_000,
      description: 'ready again',
    });
    await load.stop();
    await waitForLagZero(stack.kafka, stack.groupId, topics(), 180_000);

    const rows = await query<{ name: string; value: string }>('SELECT name, value FROM counters');
    const values = new Map(rows.map((r) => [r.name, Number(r.value)]));
    const expected = load.expectedCounters();
    expect(new Set(values.keys())).toEqual(new Set(expected.keys()));
    for (const [name, value] of expected) expect(values.get(name), name).toBe(value);
    const activities = await query<{ id: string }>('SELECT id FROM activities ORDER BY id');
    expect(activities.map((a) => a.id)).toEqual(load.expectedActivityIds());

    for (const topic of topics()) expect(await readTopic(stack.kafka, `${topic}.dlq`)).toEqual([]);
    const after = await scrapeMetrics(port());
    expect(after.sum('writebehind_consumer_dead_letters_total')).toBe(0);
    expect(after.sum('writebehind_consumer_retrying_partitions')).toBe(0);
  });
});
