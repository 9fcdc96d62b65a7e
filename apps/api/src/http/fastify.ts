import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { sendProblem } from './problem.filter.js';

/**
 * Fastify-level settings of the API: only JSON bodies (Fastify would otherwise parse text/plain, so a
 * wrong content type would fail validation with 400 instead of 415; startHttpApp keeps Nest's form parser
 * out), and problem details for the errors
 * Fastify raises before a route runs (body too large 413, bad JSON 400, unsupported media type 415).
 * Fastify's own protections stay on: the body limit, and rejecting `__proto__` keys.
 */
export function configureFastify(app: NestFastifyApplication): void {
  const fastify = app.getHttpAdapter().getInstance();
  fastify.removeContentTypeParser('text/plain');
  fastify.setErrorHandler((error, request, reply) => sendProblem(reply, request, error));
}
