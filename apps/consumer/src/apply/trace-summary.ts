import { formatTraceparent, parseTraceparent } from '@app/platform';

/** Most traceparents one batch log line names: the line stays short however large the batch. */
export const MAX_LOGGED_TRACES = 20;

export interface TraceSummary {
  /** Distinct traces among the batch's events (events without a valid traceparent are not counted). */
  traces: number;
  /** Up to MAX_LOGGED_TRACES of them, one traceparent each: sampled traces first, then the others. */
  traceparents: string[];
}

/**
 * The traces a batch carries (the W3C `traceparent` of each event, set by the API from the HTTP request: a record's
 * header, or an envelope item's field), for the batch's one log line: a write is followed from the API to the
 * Postgres commit by its trace id. Traces the caller marked sampled are listed first, so a caller that asks for a
 * trace finds it even in a large batch.
 */
export function summarizeTraces(traceparents: Iterable<string | undefined>, max = MAX_LOGGED_TRACES): TraceSummary {
  const sampled = new Map<string, string>();
  const others = new Map<string, string>();
  for (const traceparent of traceparents) {
    const context = parseTraceparent(traceparent);
    if (!context || sampled.has(context.traceId) || others.has(context.traceId)) continue;
    (context.sampled ? sampled : others).set(context.traceId, formatTraceparent(context));
  }
  return {
    traces: sampled.size + others.size,
    traceparents: [...sampled.values(), ...others.values()].slice(0, max),
  };
}
