import { HttpAdapterHost } from '@nestjs/core';
import { recordFailure } from '@app/platform';
import type { FastifyInstance } from 'fastify';
import type { ApiAccess } from './access.js';
import { ApiError } from './api.error.js';
import { toProblem } from './problem.filter.js';
import { PROBLEM_CONTENT_TYPE } from './problem.js';

/**
 * Mounts the API's routes as plain Fastify routes in the Nest app: the hot paths run tens of thousands of times a
 * second, and Nest's per-route machinery (guards, interceptors, pipes, parameter decorators, rxjs) cost more than
 * the work itself (docs/benchmarks.md). Nest keeps the wiring, configuration and lifecycle; the routes get their
 * services from it. Every error in these routes, Fastify's own included (bad JSON, 413, 415), is answered as an
 * RFC 9457 problem; one that is not an ApiError is recorded for the request's log line.
 *
 * Called from a provider's onModuleInit, before the app listens. Without an HTTP adapter (an in-process test
 * context) there is nothing to mount.
 */
export function mountRoutes(
  adapterHost: HttpAdapterHost,
  access: ApiAccess,
  routes: (scope: FastifyInstance) => void,
): void {
  const adapter = adapterHost.httpAdapter as HttpAdapterHost['httpAdapter'] | undefined;
  if (adapter?.getType() !== 'fastify') return;
  void adapter.getInstance<FastifyInstance>().register(async (scope) => {
    // Before the body is read: refused bodies cost nothing but their headers.
    scope.addHook('onRequest', (request, _reply, done) => {
      try {
        access.reserveBody(request);
        done();
      } catch (error) {
        done(error as Error);
      }
    });
    scope.addHook('onResponse', (request, _reply, done) => {
      access.releaseBody(request);
      done();
    });
    scope.addHook('onRequestAbort', (request, done) => {
      access.releaseBody(request);
      done();
    });
    scope.setErrorHandler((error, request, reply) => {
      const { problem, headers } = toProblem(error, request.url);
      if (problem.status >= 500 && !(error instanceof ApiError)) recordFailure(request.raw, error);
      return reply.status(problem.status).headers(headers).type(PROBLEM_CONTENT_TYPE).send(problem);
    });
    routes(scope);
  });
}
