import type { INestApplicationContext } from '@nestjs/common';
import { CounterView, CounterViewModule } from '@app/counter-view';
import { Database } from '@app/db';
import { RedisClient } from '@app/redis';
import { CounterRepository, type CounterIncrement, StoreModule } from '@app/store';
import { TestStack, addPending, createTestContext } from '@app/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

describe('counter store and Redis view', () => {
  let stack: TestStack;
  let app: INestApplicationContext;
  let counters: CounterRepository;
  let view: CounterView;
  let database: Database;

  beforeAll(async () => {
    stack = await TestStack.create();
    app = await createTestContext(stack.env, [StoreModule, CounterViewModule]);
    counters = app.get(CounterRepository);
    view = app.get(CounterView);
    database = app.get(Database);
  });
  afterAll(async () => {
    await app.close();
    await stack.dispose();
  });

  const apply = (increments: CounterIncrement[]) =>
    database.db.tx((t) => counters.applyIncrements(t, increments, 'consumer'));

  it('applies each event id once, aggregating per counter, across calls and within one', async () => {
    const first = await apply([
      { eventId: 'e1', name: 'a', by: 2 },
      { eventId: 'e2', name: 'a', by: 3 },
      { eventId: 'e3', name: 'b', by: -1 },
      { eventId: 'e1', name: 'a', by: 2 },
    ]);
    expect(first.appliedIds.sort()).toEqual(['e1', 'e2', 'e3']);
    const byName = first.changed.sort((x, y) => x.name.localeCompare(y.name));
    expect(byName.map(({ name, value }) => ({ name, value }))).toEqual([
      { name: 'a', value: 5 },
      { name: 'b', value: -1 },
    ]);
    const again = await apply([
      { eventId: 'e2', name: 'a', by: 3 },
      { eventId: 'e4', name: 'a', by: 10 },
    ]);
    expect(again.duplicateIds).toEqual(['e2']);
    expect(again.changed.map(({ name, value }) => ({ name, value }))).toEqual([{ name: 'a', value: 15 }]);
    // Versions are microsecond times, strictly increasing per counter.
    expect(again.changed[0]?.version).toBeGreaterThan(byName[0]?.version ?? Infinity);
    expect(byName[0]?.version).toBeGreaterThan(Date.UTC(2026, 0, 1) * 1000);
    const rows = await stack.query<{ name: string; value: string }>('SELECT name, value FROM counters ORDER BY name');
    expect(rows).toEqual([
      { name: 'a', value: '15' },
      { name: 'b', value: '-1' },
    ]);
    const ledger = await stack.query<{ n: number }>('SELECT count(*)::int AS n FROM processed_events');
    expect(ledger[0]?.n).toBe(4);
  });

  it('adds a batch in one call: every entry once, repeats of a counter summed, repeated ids not', async () => {
    const now = Date.now();
    await view.writeMany([
      { name: 'many-a', entry: { eventId: 'm1', delta: 2, acceptedAt: now } },
      { name: 'many-b', entry: { eventId: 'm2', delta: -5, acceptedAt: now } },
      { name: 'many-a', entry: { eventId: 'm3', delta: 7, acceptedAt: now } },
      // The same event again (a retried batch item): not counted twice.
      { name: 'many-a', entry: { eventId: 'm1', delta: 2, acceptedAt: now } },
    ]);
    expect(await view.value('many-a')).toBe(9);
    expect(await view.value('many-b')).toBe(-5);
    const redis = app.get(RedisClient).redis;
    // Under the app's key prefix, with the pending TTL set on each key.
    expect(await redis.hgetall('{c:many-a}:pending')).toEqual({ m1: `2:${now}`, m3: `7:${now}`, ' sum': '9' });
    expect(await redis.pttl('{c:many-b}:pending')).toBeGreaterThan(0);
    // Taken back like entries added one by one.
    await view.removePending('many-a', ['m3']);
    expect(await view.value('many-a')).toBe(2);
  });

  it('serves base + pending, and converges when the consumer reconciles', async () => {
    const name = 'views';
    const now = Date.now();
    expect(await addPending(view, name, { eventId: 'v1', delta: 4, acceptedAt: now })).toBe(4);
    expect(await addPending(view, name, { eventId: 'v2', delta: 6, acceptedAt: now })).toBe(10);
    // A repeated id is not counted twice.
    expect(await addPending(view, name, { eventId: 'v2', delta: 6, acceptedAt: now })).toBe(10);

    const increments = [{ eventId: 'v1', name, by: 4 }];
    const result = await apply(increments);
    // Between commit and reconcile the view still counts v1 once: base (0) + pending (4 + 6).
    expect(await view.value(name)).toBe(10);
    await view.reconcile(increments, result.changed);
    expect(await view.value(name)).toBe(10);
    expect((await app.get(RedisClient).redis.hgetall(`{c:${name}}:pending`))['v1']).toBeUndefined();

    await view.removePending(name, ['v2']);
    expect(await view.value(name)).toBe(4);
  });

  it('follows a counter restored to an older row: versions never go back', async () => {
    const name = 'restored';
    await apply([{ eventId: 'r1', name, by: 10 }]);
    await view.value(name);
    // Postgres restored from a backup taken before r1: the row is older than what the view has cached.
    await stack.query('DELETE FROM counters WHERE name = $1', [name]);
    await stack.query("DELETE FROM processed_events WHERE event_id = 'r1'");
    const result = await apply([{ eventId: 'r2', name, by: 1 }]);
    await view.reconcile([{ eventId: 'r2', name, by: 1 }], result.changed);
    // The restored row's next change is newer than the cached base, so the view follows Postgres.
    expect(await view.value(name)).toBe(1);
  });

  it('rebuilds from Postgres after Redis lost its data and after SCRIPT FLUSH, dropping applied ids', async () => {
    const name = 'flushed';
    const redis = app.get(RedisClient).redis;
    await addPending(view, name, { eventId: 'f1', delta: 5, acceptedAt: Date.now() });
    await apply([{ eventId: 'f1', name, by: 5 }]);
    // The consumer committed but never reconciled (it died), then Redis lost everything.
    // Every key of this test (never FLUSHALL: Redis is shared with the test files running alongside).
    const lost = await stack.redis.keys(`${stack.keyPrefix}*`);
    if (lost.length > 0) await stack.redis.unlink(...lost);
    await redis.script('FLUSH');
    expect(await view.value(name)).toBe(5);
    expect(await addPending(view, name, { eventId: 'f2', delta: 1, acceptedAt: Date.now() })).toBe(6);
    // An applied id back in pending (a client retry after its idempotency record was flushed) is counted
    // twice only until a refill or the consumer's reconcile of the duplicate removes it.
    expect(await addPending(view, name, { eventId: 'f1', delta: 5, acceptedAt: Date.now() })).toBe(11);
    await redis.del(`{c:${name}}:base`);
    expect(await view.value(name)).toBe(6);
  });

  it('makes one Postgres read for a burst of 1,000 reads of a cold counter', async () => {
    await apply([{ eventId: 'c1', name: 'cold', by: 7 }]);
    // Counts the real repository calls (each is one Postgres round trip); the calls go through unchanged.
    const reads = vi.spyOn(counters, 'readWithApplied');
    const values = await Promise.all(Array.from({ length: 1000 }, () => view.value('cold')));
    expect(new Set(values)).toEqual(new Set([7]));
    expect(reads).toHaveBeenCalledTimes(1);
    reads.mockRestore();
  });

  it('keeps an acknowledged delta that is not applied yet on a refill, however old (consumers down for hours)', async () => {
    const name = 'waiting';
    const old = Date.now() - 2 * 60 * 60 * 1000;
    await addPending(view, name, { eventId: 'w-old', delta: 100, acceptedAt: old });
    await addPending(view, name, { eventId: 'w-new', delta: 1, acceptedAt: Date.now() });
    await app.get(RedisClient).redis.del(`{c:${name}}:base`);
    expect(await view.value(name)).toBe(101);
    // Once it is applied, the refill takes it out with a base that counts it.
    await apply([{ eventId: 'w-old', name, by: 100 }]);
    await app.get(RedisClient).redis.del(`{c:${name}}:base`);
    expect(await view.value(name)).toBe(101);
    expect(Object.keys(await app.get(RedisClient).redis.hgetall(`{c:${name}}:pending`)).sort()).toEqual([
      ' sum',
      'w-new',
    ]);
  });
});
