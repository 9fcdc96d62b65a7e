import type { KafkaMessage } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { summarizeTraces } from './trace-summary.js';

const traceparent = (i: number, sampled: boolean) =>
  `00-${i.toString(16).padStart(32, '0')}-${'1'.repeat(16)}-${sampled ? '01' : '00'}`;
const message = (headers: KafkaMessage['headers']) => ({ headers }) as KafkaMessage;

describe('summarizeTraces', () => {
  it('counts distinct traces and names a bounded number, sampled ones first', () => {
    const messages = [
      ...Array.from({ length: 30 }, (_, i) => message({ traceparent: Buffer.from(traceparent(i + 1, false)) })),
      message({ traceparent: Buffer.from(traceparent(1, false)) }),
      message({ traceparent: Buffer.from(traceparent(99, true)) }),
      message({}),
      message({ traceparent: Buffer.from('garbage') }),
    ];
    const summary = summarizeTraces(messages, 5);
    expect(summary.traces).toBe(31);
    expect(summary.traceparents).toHaveLength(5);
    expect(summary.traceparents[0]).toBe(traceparent(99, true));
    expect(summary.traceparents[1]).toBe(traceparent(1, false));
  });

  it('is empty for events without trace context', () => {
    expect(summarizeTraces([message(undefined)])).toEqual({ traces: 0, traceparents: [] });
  });
});
