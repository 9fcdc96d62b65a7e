import type { AppConfig } from '@app/config';
import type { LagMonitor, PartitionLag } from '@app/lag';
import type { PinoLogger } from 'nestjs-pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { LagExporter } from './lag-exporter.service.js';
import { LagMetrics } from './lag.metrics.js';

const quiet = { setContext() {}, info() {}, warn() {}, debug() {}, error() {} } as unknown as PinoLogger;
const config = {
  consumer: { groupId: 'g' },
  kafka: { topics: { counters: 'c', activities: 'a' } },
  api: { lagExport: { intervalMs: 1000 } },
} as unknown as AppConfig;

const lag = (partition: number, lagMessages: number, lagSeconds: number): PartitionLag => ({
  groupId: 'g',
  topic: 'c',
  partition,
  committedOffset: undefined,
  appliedOffset: 10,
  position: 10,
  endOffset: 10 + lagMessages,
  lagMessages,
  lagSeconds,
});

function setUp(snapshots: (PartitionLag[] | Error)[]) {
  const registry = new Registry();
  const metrics = new LagMetrics({ registry });
  metrics.register('g');
  const monitor = {
    snapshot: async () => {
      const next = snapshots.shift();
      if (next instanceof Error || next === undefined) throw next ?? new Error('no more snapshots');
      return next;
    },
  } as unknown as LagMonitor;
  const exporter = new LagExporter(config, monitor, metrics, quiet);
  const value = async (name: string, labels: Record<string, string> = {}) =>
    ((await registry.getMetricsAsJSON()).find((m) => m.name === name)?.values ?? [])
      .filter((s) => Object.entries(labels).every(([k, v]) => String(s.labels[k]) === v))
      .map((s) => s.value);
  return { exporter, value };
}

describe('LagExporter', () => {
  it('exports lag per partition, 0 when caught up, never NaN', async () => {
    const { exporter, value } = setUp([[lag(0, 5, 12.5), lag(1, 0, 0), lag(2, 3, Number.NaN)]]);
    await exporter.refresh();
    expect(await value('writebehind_consumer_lag_messages', { partition: '0' })).toEqual([5]);
    expect(await value('writebehind_consumer_lag_seconds')).toEqual([12.5, 0, 0]);
    expect(await value('writebehind_consumer_position_offset', { group: 'g', topic: 'c', partition: '1' })).toEqual([
      10,
    ]);
    expect(await value('writebehind_topic_end_offset', { partition: '2' })).toEqual([13]);
    expect((await value('writebehind_consumer_lag_last_success_timestamp_seconds'))[0]).toBeGreaterThan(0);
    expect(await value('writebehind_consumer_lag_refresh_failures_total')).toEqual([0]);
  });

  it('keeps the last values when a refresh fails, counts it and leaves the success time behind', async () => {
    const { exporter, value } = setUp([[lag(0, 5, 12.5)], new Error('kafka unreachable'), [lag(0, 0, 0)]]);
    await exporter.refresh();
    const succeeded = await value('writebehind_consumer_lag_last_success_timestamp_seconds');
    await exporter.refresh();
    expect(await value('writebehind_consumer_lag_seconds')).toEqual([12.5]);
    expect(await value('writebehind_consumer_lag_messages')).toEqual([5]);
    expect(await value('writebehind_consumer_lag_refresh_failures_total', { group: 'g' })).toEqual([1]);
    expect(await value('writebehind_consumer_lag_last_success_timestamp_seconds')).toEqual(succeeded);
    await exporter.refresh();
    expect(await value('writebehind_consumer_lag_seconds')).toEqual([0]);
  });

  it('drops partitions that are gone from the snapshot', async () => {
    const { exporter, value } = setUp([[lag(0, 1, 1), lag(1, 1, 1)], [lag(0, 0, 0)]]);
    await exporter.refresh();
    await exporter.refresh();
    expect(await value('writebehind_consumer_lag_messages')).toEqual([0]);
  });
});
