import { randomFillSync } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/), version 00: what travels in a `traceparent` header
 * (`00-<trace-id>-<parent-id>-<flags>`). The API continues the caller's trace (or starts one), stamps its own span
 * on every event it publishes (Kafka header `traceparent`), and the consumer names those traces in its batch log
 * lines: one write can be followed from the HTTP request to the Postgres commit.
 */
export interface TraceContext {
  /** 32 lower-case hex digits, not all zero. */
  readonly traceId: string;
  /** 16 lower-case hex digits, not all zero: the span that sends this context on (the parent of the next). */
  readonly spanId: string;
  /** The `sampled` flag: the caller asks for this trace to be recorded. */
  readonly sampled: boolean;
}

export const TRACEPARENT_HEADER = 'traceparent';
/** W3C Trace Context Level 2: the response names the trace the server recorded the request under. */
export const TRACERESPONSE_HEADER = 'traceresponse';

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ALL_ZERO = /^0+$/;

/** The context in a `traceparent` value, or undefined when it is absent or invalid (then a new trace starts). */
export function parseTraceparent(value: unknown): TraceContext | undefined {
  const text = Buffer.isBuffer(value) ? value.toString('latin1') : value;
  // Several traceparent headers (an array) are invalid: the spec says to restart the trace.
  if (typeof text !== 'string' || text.length > 512) return undefined;
  const match = TRACEPARENT.exec(text.trim());
  if (!match) return undefined;
  const [, version = '', traceId = '', spanId = '', flags = '', rest] = match;
  // Version ff is forbidden; version 00 has exactly four fields (later versions may append more).
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (ALL_ZERO.test(traceId) || ALL_ZERO.test(spanId)) return undefined;
  return { traceId, spanId, sampled: (Number.parseInt(flags, 16) & 1) === 1 };
}

export function formatTraceparent(context: TraceContext): string {
  return `00-${context.traceId}-${context.spanId}-${context.sampled ? '01' : '00'}`;
}

/**
 * Random bytes for ids, drawn from the CSPRNG 4 KiB at a time: a randomBytes call per id (two per HTTP request) was
 * ~2% of the API's CPU in a profile of the ingest benchmark. (crypto.randomUUID pools its entropy the same way.)
 */
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

function randomHex(bytes: number): string {
  for (;;) {
    if (poolOffset + bytes > pool.length) {
      randomFillSync(pool);
      poolOffset = 0;
    }
    const hex = pool.toString('hex', poolOffset, (poolOffset += bytes));
    if (!ALL_ZERO.test(hex)) return hex;
  }
}

/**
 * A new span: in `parent`'s trace, keeping its sampled flag; without a parent, the root of a new trace, not
 * sampled (the caller did not ask for it to be recorded).
 */
export function childSpan(parent?: TraceContext): TraceContext {
  return { traceId: parent?.traceId ?? randomHex(16), spanId: randomHex(8), sampled: parent?.sampled ?? false };
}

const requestTraces = new WeakMap<IncomingMessage, TraceContext>();

/**
 * The span of one HTTP request: a child of the request's `traceparent`, or the root of a new trace. Computed on
 * first use and kept with the request, so the request log, the response header and the published events agree.
 */
export function requestTrace(request: IncomingMessage): TraceContext {
  let trace = requestTraces.get(request);
  if (trace === undefined) {
    trace = childSpan(parseTraceparent(request.headers[TRACEPARENT_HEADER]));
    requestTraces.set(request, trace);
  }
  return trace;
}
