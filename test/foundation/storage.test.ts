import { migrate } from '@app/db';
import { TestStack, baseEnv } from '@app/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe('migrations', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await TestStack.create();
  });
  afterAll(async () => {
    await stack.dispose();
  });

  it('creates the tables of docs/architecture.md section 6, and a second run applies nothing', async () => {
    const tables = await stack.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`,
      [stack.schema],
    );
    expect(tables.map((t) => t.table_name)).toEqual([
      'activities',
      'consumer_offsets',
      'counters',
      'dlq_redrives',
      'ops_audit',
      'partition_holds',
      'pgmigrations',
      'processed_events',
      'replay_requests',
    ]);
    const keys = await stack.query<{ table_name: string; columns: string }>(
      `SELECT tc.table_name, string_agg(kcu.column_name, ',' ORDER BY kcu.ordinal_position) AS columns
         FROM information_schema.table_constraints tc
         JOIN information_schema.key_column_usage kcu USING (constraint_schema, constraint_name)
        WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = $1
        GROUP BY tc.table_name ORDER BY tc.table_name`,
      [stack.schema],
    );
    expect(keys).toEqual(
      expect.arrayContaining([
        { table_name: 'counters', columns: 'name' },
        { table_name: 'activities', columns: 'id' },
        { table_name: 'processed_events', columns: 'event_id' },
        { table_name: 'consumer_offsets', columns: 'group_id,topic,partition' },
      ]),
    );
    const again = await migrate({ databaseUrl: baseEnv().DATABASE_URL, schema: stack.schema });
    expect(again).toEqual([]);
  });
});
