// The HTTP load generator of every HTTP benchmark (autocannon, in the benchmark's process): the same connections,
// duration and request shapes against each server compared, one server at a time.
import autocannon from 'autocannon';
import { type App, peakRss } from './stack.ts';

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
  /** A path and body per request (called for every request, so keys can vary). */
  next: () => { path: string; body?: string };
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
          const { path, body } = options.next();
          return body === undefined ? { ...request, path } : { ...request, path, body };
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

/** Counter names spread over `counters` keys, in an order that touches them all before repeating. */
export function counterNames(counters: number, prefix = 'bench'): () => string {
  let seq = 0;
  return () => `${prefix}:${(seq++ * 7919) % counters}`;
}

/** Requests of the API's counter endpoints: single increments (`batch` undefined) or batches of `batch` items. */
export function incrementRequests(counters: number, batch?: number): () => { path: string; body: string } {
  const name = counterNames(counters);
  if (batch === undefined) return () => ({ path: `/v1/counters/${name()}/increment`, body: '{"by":1}' });
  return () => ({
    path: '/v1/counters/batch',
    body: JSON.stringify({ increments: Array.from({ length: batch }, () => ({ name: name(), by: 1 })) }),
  });
}

export interface Case {
  name: string;
  app: App;
  method?: 'GET' | 'POST';
  next: () => { path: string; body?: string };
}

export interface Measured extends LoadResult {
  /** The most resident memory of the server seen while it was loaded, MB. */
  rssMb: number;
  /** Server CPU time per answered request, ms. */
  cpuMsPerRequest: number;
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
  const totals = new Map<string, { results: LoadResult[]; rssMb: number; cpuSeconds: number }>();
  for (let round = 0; round < options.rounds; round++) {
    for (const c of cases) {
      const { result, rssMb, cpuSeconds } = await peakRss(c.app, () =>
        load({
          url: c.app.url,
          connections: options.connections,
          durationSeconds: Math.max(1, Math.round(options.durationSeconds / options.rounds)),
          ...(c.method ? { method: c.method } : {}),
          next: c.next,
        }),
      );
      const total = totals.get(c.name) ?? { results: [], rssMb: 0, cpuSeconds: 0 };
      total.results.push(result);
      total.rssMb = Math.max(total.rssMb, rssMb);
      total.cpuSeconds += cpuSeconds;
      totals.set(c.name, total);
    }
  }
  const measured = new Map<string, Measured>();
  for (const [name, { results, rssMb, cpuSeconds }] of totals) {
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
    });
  }
  return measured;
}
