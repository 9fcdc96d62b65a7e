import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { childSpan, formatTraceparent, parseTraceparent, requestTrace } from './trace-context.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';

describe('trace context', () => {
  it('parses a version-00 traceparent and formats it back', () => {
    const header = `00-${TRACE_ID}-${SPAN_ID}-01`;
    const parsed = parseTraceparent(header);
    expect(parsed).toEqual({ traceId: TRACE_ID, spanId: SPAN_ID, sampled: true });
    expect(formatTraceparent(parsed ?? childSpan())).toBe(header);
    expect(parseTraceparent(Buffer.from(`00-${TRACE_ID}-${SPAN_ID}-00`))?.sampled).toBe(false);
  });

  it('rejects invalid values, so that a new trace starts', () => {
    for (const bad of [
      undefined,
      '',
      [`00-${TRACE_ID}-${SPAN_ID}-01`, `00-${TRACE_ID}-${SPAN_ID}-01`],
      `00-${TRACE_ID.toUpperCase()}-${SPAN_ID}-01`,
      `00-${'0'.repeat(32)}-${SPAN_ID}-01`,
      `00-${TRACE_ID}-${'0'.repeat(16)}-01`,
      `ff-${TRACE_ID}-${SPAN_ID}-01`,
      `00-${TRACE_ID}-${SPAN_ID}-01-extra`,
      `00-${TRACE_ID}-${SPAN_ID}`,
    ]) {
      expect(parseTraceparent(bad), JSON.stringify(bad)).toBeUndefined();
    }
    // A later version may carry more fields: the first four are understood.
    expect(parseTraceparent(`01-${TRACE_ID}-${SPAN_ID}-01-extra`)?.traceId).toBe(TRACE_ID);
  });

  it('continues the caller trace with a new span, or starts an unsampled one', () => {
    const parent = { traceId: TRACE_ID, spanId: SPAN_ID, sampled: true };
    const child = childSpan(parent);
    expect(child.traceId).toBe(TRACE_ID);
    expect(child.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(child.spanId).not.toBe(SPAN_ID);
    expect(child.sampled).toBe(true);
    const root = childSpan();
    expect(root.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(root.sampled).toBe(false);
  });

  it('gives one request one span, whoever asks first', () => {
    const request = { headers: { traceparent: `00-${TRACE_ID}-${SPAN_ID}-01` } } as unknown as IncomingMessage;
    const first = requestTrace(request);
    expect(first.traceId).toBe(TRACE_ID);
    expect(requestTrace(request)).toBe(first);
  });
});
