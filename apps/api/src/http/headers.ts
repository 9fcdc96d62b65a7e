import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { ValidationError } from './api.error.js';

const KEY = /^[\x21-\x7e]{1,200}$/;

/** The `Idempotency-Key` header, validated: 1 to 200 printable ASCII characters without spaces. */
export const IdempotencyKey = createParamDecorator((_data: unknown, context: ExecutionContext): string | undefined => {
  const value = context.switchToHttp().getRequest<FastifyRequest>().headers['idempotency-key'];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !KEY.test(value)) {
    throw new ValidationError([
      { field: 'headers.idempotency-key', message: '1 to 200 printable ASCII characters, no spaces' },
    ]);
  }
  return value;
});
