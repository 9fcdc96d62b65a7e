import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { toProblem } from './problem.filter.js';
import { PROBLEM_CONTENT_TYPE } from './problem.js';

/**
 * Fastify-level settings of the API: only JSON bodies. Fastify would otherwise parse text/plain, so a wrong
 * content type would fail validation with 400 instead of 415 (startHttpApp keeps Nest's form parser out).
 * Fastify's own errors (body too large 413, bad JSON 400, unsupported media type 415) reach Nest's exception
 * filters, so ProblemFilter answers them as problem details. Fastify's protections stay on: the body
 * limit, and rejecting `__proto__` keys.
 */
export function configureFastify(app: NestFastifyApplication): void {
  app.getHttpAdapter().getInstance().removeContentTypeParser('text/plain');
}

/**
 * Fastify's router rejects a malformed URL (400, e.g. `/v1/counters/%/increment`) or an over-long route parameter
 * (414) before any hook or Nest filter runs: answered as problem details too, like every other error.
 */
export function answerFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const { problem } = toProblem(error, request.url);
  void reply.status(problem.status).type(PROBLEM_CONTENT_TYPE).send(problem);
}
