import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { requestTrace } from './trace-context.js';

const failures = new WeakMap<IncomingMessage, unknown>();

type Log = (fields: object, message: string) => void;

/** Keeps the error that made a request fail, for its log line (handlers answer it; the line is written after). */
export function recordFailure(request: IncomingMessage, error: unknown): void {
  failures.set(request, error);
}

/**
 * How a finished request is logged. High-write clients send thousands of requests a second: a successful request is
 * counted in metrics, not logged, and costs nothing here. A client error logs at warn, a server error at error. A 503
 * or 429 is the backpressure answer (G6), also counted in metrics: under an overload one line per refused request
 * would flood the log, so they log at debug (as do failing readiness probes).
 */
function levelOf(status: number, failed: boolean): 'debug' | 'warn' | 'error' | undefined {
  if (status === 503 || status === 429) return 'debug';
  if (failed || status >= 500) return 'error';
  return status >= 400 ? 'warn' : undefined;
}

/**
 * Logs each request that failed, once it was answered: its id, method, URL, headers (credentials are redacted by
 * the logger), status, time taken, trace id and, for a server error, the error. One hook for every route, Nest's and
 * the plain Fastify ones.
 */
export function logFailedRequests(fastify: FastifyInstance, logger: Record<'debug' | 'warn' | 'error', Log>): void {
  fastify.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const status = reply.statusCode;
    if (status < 400) return done();
    const err = failures.get(request.raw);
    const level = levelOf(status, err !== undefined);
    if (level !== undefined) {
      logger[level](
        {
          req: { id: request.id, method: request.method, url: request.url, headers: request.headers },
          res: reply.raw,
          responseTime: Math.round(reply.elapsedTime),
          traceId: requestTrace(request.raw).traceId,
          ...(err === undefined ? {} : { err }),
        },
        status >= 500 ? 'request errored' : 'request failed',
      );
    }
    done();
  });
}
