// The HTTP load generator of every HTTP benchmark (autocannon, in the benchmark's process): the same connections,
// duration and request shapes against each server compared, one server at a time.
import { randomBytes } from 'node:crypto';
import autocannon from 'autocannon';
import { type App, peakRss } from './stack.ts';

/** One request of a load: a path, and a body and headers (beyond `content-type: application/json`) if any. */
export interface Request {
  path: string;
  body?: string;
  headers?: Record<string, string>;
}

export interface LoadResult {
  ok: number;
  errors: number;
  seconds: number;
  /** 2xx answers per second. */
  rps: number;
  p50: number;
  p99: number;
}

export interface LoadOptions {
  url: string;
  connections: number;
  durationSeconds: number;
  method?: 'GET' | 'POST';
  /** A request per request sent (called for every request, so keys can vary). */
  next: () => Request;
}

export async function load(options: LoadOptions): Promise<LoadResult> {
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.durationSeconds,
    requests: [
      {
        method: options.method ?? 'POST',
        headers: { 'content-type': 'application/json' },
        setupRequest: (request) => {
          const { path, body, headers } = options.next();
          const built =
            headers === undefined
              ? { ...request, path }
              : { ...request, path, headers: { ...request.headers, ...headers } };
          return body === undefined ? built : { ...built, body };
        },
      },
    ],
  });
  const ok = result['2xx'];
  return {
    ok,
    errors: result.non2xx + result.errors + result.timeouts,
    seconds: result.duration,
    rps: ok / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
  };
}

/**
 * How a load's writes spread over the counters: `uniform` over all of them, or `hot`, half of the writes on one hot
 * counter and the other half uniform over the rest.
 */
export type Distribution = 'uniform' | 'hot';

/** Counter names spread over `counters` keys, in an order that touches them all before repeating (see Distribution). */
export function counterNames(counters: number, distribution: Distribution = 'uniform', prefix = 'bench'): () => string {
  let seq = 0;
  let uniform = 0;
  if (distribution === 'uniform') return () => `${prefix}:${(seq++ * 7919) % counters}`;
  return () => (seq++ % 2 === 0 ? `${prefix}:hot` : `${prefix}:${(uniform++ * 7919) % counters}`);
}

export interface IncrementShape {
  /** Items per batch request; undefined: single increments. */
  batch?: number | undefined;
  distribution?: Distribution;
  /** Single increments only: a fresh Idempotency-Key on every request. */
  keyed?: boolean;
}

/** Requests of the API's counter endpoints: single increments or batches of `batch` items (items without ids). */
export function incrementRequests(counters: number, shape: IncrementShape = {}): () => Request {
  const name = counterNames(counters, shape.distribution);
  const { batch } = shape;
  if (batch !== undefined) {
    return () => ({
      path: '/v1/counters/batch',
      body: JSON.stringify({ increments: Array.from({ length: batch }, () => ({ name: name(), by: 1 })) }),
    });
  }
  if (!shape.keyed) return () => ({ path: `/v1/counters/${name()}/increment`, body: '{"by":1}' });
  // Unique across runs and servers (they share Redis), cheap to make.
  const run = randomBytes(6).toString('hex');
  let seq = 0;
  return () => ({
    path: `/v1/counters/${name()}/increment`,
    body: '{"by":1}',
    headers: { 'idempotency-key': `bench-${run}-${seq++}` },
  });
}

export interface Case {
  name: string;
  app: App;
  method?: 'GET' | 'POST';
  next: () => Request;
  /**
   * CPU seconds used so far by the processes whose work counts for this case, by part (e.g. the server, Redis,
   * Kafka, Postgres, a consumer): read before its load and after `settle`, the differences add up in `box`.
   */
  box?: () => Record<string, number>;
  /** Runs after each load and before `box` is read again: e.g. waits until a consumer applied what was accepted. */
  settle?: () => Promise<void>;
}

export interface Measured extends LoadResult {
  /** The most resident memory of the server seen while it was loaded, MB. */
  rssMb: number;
  /** Server CPU time per answered request, ms. */
  cpuMsPerRequest: number;
  /** Server CPU seconds while it was loaded. */
  cpuSeconds: number;
  /** The case's `box`: CPU seconds by part, from the start of each load to the end of its `settle`. */
  box: Record<string, number>;
  /** Seconds spent in `settle`. */
  settleSeconds: number;
}

/**
 * Loads each case for `durationSeconds` in all, in `rounds` turns that alternate between the cases (a, b, c, a, b,
 * c, ...), so that a change in the machine's load during the run weighs on all of them alike. Rates add up over the
 * rounds; p50 is the rounds' mean weighted by requests, p99 the worst round's (autocannon gives percentiles only).
 */
export async function measureRounds(
  cases: Case[],
  options: { connections: number; durationSeconds: number; rounds: number },
): Promise<Map<string, Measured>> {
  const totals = new Map<
    string,
    { results: LoadResult[]; rssMb: number; cpuSeconds: number; box: Record<string, number>; settleSeconds: number }
  >();
  for (let round = 0; round < options.rounds; round++) {
    for (const c of cases) {
      const boxBefore = c.box?.() ?? {};
      const { result, rssMb, cpuSeconds } = await peakRss(c.app, () =>
        load({
          url: c.app.url,
          connections: options.connections,
          durationSeconds: Math.max(1, Math.round(options.durationSeconds / options.rounds)),
          ...(c.method ? { method: c.method } : {}),
          next: c.next,
        }),
      );
      c.app.assertRunning();
      const settleStarted = performance.now();
      await c.settle?.();
      const settleSeconds = (performance.now() - settleStarted) / 1000;
      const boxAfter = c.box?.() ?? {};
      const total = totals.get(c.name) ?? { results: [], rssMb: 0, cpuSeconds: 0, box: {}, settleSeconds: 0 };
      total.results.push(result);
      total.rssMb = Math.max(total.rssMb, rssMb);
      total.cpuSeconds += cpuSeconds;
      total.settleSeconds += settleSeconds;
      for (const [part, seconds] of Object.entries(boxAfter)) {
        total.box[part] = (total.box[part] ?? 0) + seconds - (boxBefore[part] ?? 0);
      }
      totals.set(c.name, total);
    }
  }
  const measured = new Map<string, Measured>();
  for (const [name, { results, rssMb, cpuSeconds, box, settleSeconds }] of totals) {
    const ok = results.reduce((sum, r) => sum + r.ok, 0);
    const errors = results.reduce((sum, r) => sum + r.errors, 0);
    const seconds = results.reduce((sum, r) => sum + r.seconds, 0);
    const answered = results.reduce((sum, r) => sum + r.ok + r.errors, 0);
    measured.set(name, {
      ok,
      errors,
      seconds,
      rps: ok / seconds,
      p50: results.reduce((sum, r) => sum + r.p50 * (r.ok + r.errors), 0) / Math.max(1, answered),
      p99: Math.max(...results.map((r) => r.p99)),
      rssMb,
      cpuMsPerRequest: (cpuSeconds * 1000) / Math.max(1, answered),
      cpuSeconds,
      box,
      settleSeconds,
    });
  }
  return measured;
}
