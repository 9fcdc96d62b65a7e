import { describe, expect, it } from 'vitest';
import { summarizeTraces } from './trace-summary.js';

const traceparent = (i: number, sampled: boolean) =>
  `00-${i.toString(16).padStart(32, '0')}-${'1'.repeat(16)}-${sampled ? '01' : '00'}`;

describe('summarizeTraces', () => {
  it('counts distinct traces and names a bounded number, sampled ones first', () => {
    const traceparents = [
      ...Array.from({ length: 30 }, (_, i) => traceparent(i + 1, false)),
      traceparent(1, false),
      traceparent(99, true),
      undefined,
      'garbage',
    ];
    const summary = summarizeTraces(traceparents, 5);
    expect(summary.traces).toBe(31);
    expect(summary.traceparents).toHaveLength(5);
    expect(summary.traceparents[0]).toBe(traceparent(99, true));
    expect(summary.traceparents[1]).toBe(traceparent(1, false));
  });

  it('is empty for events without trace context', () => {
    expect(summarizeTraces([undefined])).toEqual({ traces: 0, traceparents: [] });
  });
});
