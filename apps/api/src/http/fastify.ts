import type { NestFastifyApplication } from '@nestjs/platform-fastify';

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
