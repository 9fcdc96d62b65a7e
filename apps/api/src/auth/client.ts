import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';

/** The caller, as established by ApiKeyGuard: its client id scopes idempotency keys and rate limits. */
export const PUBLIC_CLIENT = 'public';

declare module 'fastify' {
  interface FastifyRequest {
    clientId?: string;
  }
}

export const ClientId = createParamDecorator(
  (_data: unknown, context: ExecutionContext): string =>
    context.switchToHttp().getRequest<FastifyRequest>().clientId ?? PUBLIC_CLIENT,
);
