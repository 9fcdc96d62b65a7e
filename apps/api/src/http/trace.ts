import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { type TraceContext, requestTrace } from '@app/platform';
import type { FastifyRequest } from 'fastify';

/**
 * The request's span (W3C trace context): in the caller's trace when it sent a valid `traceparent`, else in a new
 * one. The same span is named in the `traceresponse` header and in the request's log lines.
 */
export const Trace = createParamDecorator((_data: unknown, context: ExecutionContext): TraceContext =>
  requestTrace(context.switchToHttp().getRequest<FastifyRequest>().raw),
);
