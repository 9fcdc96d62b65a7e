import { createHash, timingSafeEqual } from 'node:crypto';
import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { AppConfig } from '@app/config';
import type { FastifyRequest } from 'fastify';
import { UnauthorizedError } from '../http/api.error.js';
import { PUBLIC_CLIENT } from './client.js';

const digest = (key: string) => createHash('sha256').update(key).digest();

/**
 * API keys from `API_KEYS` (`key:client` pairs). A key comes in `X-API-Key` or `Authorization: Bearer`.
 * Keys are compared as SHA-256 digests with timingSafeEqual, so response time says nothing about a key.
 * With no keys configured, authentication is off and every caller is the client `public`.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly keys: { digest: Buffer; clientId: string }[];

  constructor(config: AppConfig) {
    this.keys = [...config.api.keys].map(([key, clientId]) => ({ digest: digest(key), clientId }));
  }

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    if (this.keys.length === 0) {
      request.clientId = PUBLIC_CLIENT;
      return true;
    }
    const presented = presentedKey(request);
    if (presented === undefined) throw new UnauthorizedError('send the API key in X-API-Key or Authorization: Bearer');
    const candidate = digest(presented);
    let clientId: string | undefined;
    for (const key of this.keys) if (timingSafeEqual(key.digest, candidate)) clientId = key.clientId;
    if (clientId === undefined) throw new UnauthorizedError('the API key is not valid');
    request.clientId = clientId;
    return true;
  }
}

function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers['x-api-key'];
  if (typeof header === 'string' && header.length > 0) return header;
  const authorization = request.headers.authorization;
  const match = authorization?.match(/^Bearer\s+(\S+)$/i);
  return match?.[1];
}
