import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PinoLogger } from 'nestjs-pino';
import { ApiError, ValidationError } from './api.error.js';
import { PROBLEM_CONTENT_TYPE, type Problem, problem } from './problem.js';

const SLUGS: Record<number, string> = {
  400: 'bad-request',
  404: 'not-found',
  405: 'method-not-allowed',
  413: 'payload-too-large',
  415: 'unsupported-media-type',
  429: 'rate-limited',
  500: 'internal',
  503: 'unavailable',
};

/** Maps any error to an RFC 9457 problem. Internal errors are logged and answered without their details. */
export function toProblem(error: unknown, instance: string): { problem: Problem; headers: Record<string, string> } {
  if (error instanceof ApiError) {
    const p = { ...problem(error.status, error.type, error.title, error.message, instance), ...error.extensions };
    if (error instanceof ValidationError) p.errors = error.errors;
    return { problem: p, headers: error.headers };
  }
  if (error instanceof HttpException) {
    const status = error.getStatus();
    return { problem: problem(status, SLUGS[status] ?? 'http', error.message, undefined, instance), headers: {} };
  }
  // Fastify's own errors (body too large, bad JSON, unsupported media type) carry a statusCode below 500.
  const fastify = error as { statusCode?: number; message?: string; code?: string };
  if (typeof fastify.statusCode === 'number' && fastify.statusCode >= 400 && fastify.statusCode < 500) {
    const status = fastify.statusCode;
    return {
      problem: problem(status, SLUGS[status] ?? 'bad-request', titleFor(status), fastify.message, instance),
      headers: {},
    };
  }
  return {
    problem: problem(500, 'internal', 'Internal error', undefined, instance),
    headers: {},
  };
}

function titleFor(status: number): string {
  switch (status) {
    case 413:
      return 'The request body is too large';
    case 415:
      return 'Send application/json';
    default:
      return 'The request is not valid';
  }
}

function sendProblem(reply: FastifyReply, request: FastifyRequest, error: unknown): FastifyReply {
  const { problem: body, headers } = toProblem(error, request.url);
  return reply.status(body.status).headers(headers).type(PROBLEM_CONTENT_TYPE).send(body);
}

function isHealthReport(body: unknown): boolean {
  return typeof body === 'object' && body !== null && 'status' in body && ('details' in body || 'reason' in body);
}

@Catch()
export class ProblemFilter implements ExceptionFilter {
  constructor(private readonly logger: PinoLogger) {
    logger.setContext('ProblemFilter');
  }

  catch(error: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const reply = http.getResponse<FastifyReply>();
    const request = http.getRequest<FastifyRequest>();
    // A failed readiness check is an answer, not an error: Terminus' body (which check is down) goes out as
    // it is, and is not logged (probes ask every few seconds).
    if (error instanceof HttpException && isHealthReport(error.getResponse())) {
      void reply.status(error.getStatus()).send(error.getResponse());
      return;
    }
    const { problem: body } = toProblem(error, request.url);
    if (body.status >= 500 && !(error instanceof ApiError)) {
      this.logger.error({ err: error }, 'request failed');
    }
    sendProblem(reply, request, error);
  }
}
