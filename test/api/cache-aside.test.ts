import { AppProcess, PostgresServer, TestStack } from '@app/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Cache-aside with single-flight, through the HTTP API: 1,000 concurrent GETs of a cold counter make one
 * Postgres query. Counted by pg_stat_statements on a private Postgres that only this API uses.
 */
describe('cache-aside reads', () => {
  let postgres: PostgresServer;
  let stack: TestStack;
  let api: AppProcess;
  let admin: pg.Client;

  beforeAll(async () => {
    postgres = await PostgresServer.start();
    admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    await admin.query(`ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'`);
    await admin.end();
    await postgres.restart();
    admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    await admin.query('CREATE EXTENSION pg_stat_statements');
    stack = await TestStack.create({ databaseUrl: postgres.url });
    api = new AppProcess('api', { ...stack.env, LOG_LEVEL: 'warn' });
    await api.ready(Number(stack.env['API_PORT']));
  });
  afterAll(async () => {
    await api.stop();
    await admin.end();
    await stack.dispose();
    await postgres.dispose();
  });

  it('makes one Postgres query for 1,000 concurrent GETs of a cold counter', async () => {
    await stack.query(`INSERT INTO counters (name, value, version) VALUES ('cold', 41, 3)`);
    await admin.query('SELECT pg_stat_statements_reset()');
    const url = `http://127.0.0.1:${stack.env['API_PORT']}/v1/counters/cold`;
    const answers = await Promise.all(
      Array.from({ length: 1000 }, async () => (await (await fetch(url)).json()) as { value: number }),
    );
    expect(new Set(answers.map((a) => a.value))).toEqual(new Set([41]));
    const reads = await admin.query<{ calls: string }>(
      `SELECT sum(calls)::text AS calls FROM pg_stat_statements WHERE query LIKE '%LEFT JOIN counters%'`,
    );
    expect(Number(reads.rows[0]?.calls)).toBe(1);
    // Warm now: more reads make no query at all.
    await Promise.all(Array.from({ length: 100 }, () => fetch(url).then((r) => r.json())));
    const after = await admin.query<{ calls: string }>(
      `SELECT sum(calls)::text AS calls FROM pg_stat_statements WHERE query LIKE '%LEFT JOIN counters%'`,
    );
    expect(Number(after.rows[0]?.calls)).toBe(1);
  });
});
