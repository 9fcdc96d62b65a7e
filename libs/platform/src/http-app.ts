import type { DynamicModule, INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { Logger, PinoLogger } from 'nestjs-pino';
import { logFailedRequests } from './request-log.js';
import { TRACERESPONSE_HEADER, formatTraceparent, requestTrace } from './trace-context.js';

export interface HttpAppOptions {
  name: string;
  host: string;
  port: number;
  /** Fastify's own limit; a larger body is answered 413 before any handler runs. */
  bodyLimitBytes?: number;
  /** After SIGTERM, the longest the drain may take before the process exits anyway (default 25 s). */
  shutdownTimeoutMs?: number;
  /** Adapter-level settings (content-type parsers, error handler), applied before the app listens. */
  configure?: (app: NestFastifyApplication) => void;
  /**
   * Answers what Fastify's router rejects before any hook or Nest filter runs: a malformed URL (400, e.g. a lone
   * `%`) and an over-long route parameter (414). Without it they get Fastify's own JSON error body.
   */
  frameworkErrors?: (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => void;
  /** Awaited once the app is initialized and before it listens: what must be ready before the first request. */
  beforeListen?: (app: NestFastifyApplication) => Promise<void>;
}

/**
 * Creates and starts an HTTP app and wires its shutdown. SIGTERM or SIGINT drain it (readiness turns false,
 * in-flight work finishes, connections close) and the process exits 0; a drain that hangs past the timeout
 * exits 1. An error that escapes every handler ends the process: crash-only, a supervisor restarts it, and no
 * acknowledged write lives only in process memory.
 */
export async function startHttpApp(module: DynamicModule, options: HttpAppOptions): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({
    bodyLimit: options.bodyLimitBytes ?? 1024 * 1024,
    return503OnClosing: true,
    // Counter names may be 200 characters, percent-encoded up to three times that; Fastify's default is 100.
    routerOptions: { maxParamLength: 1000 },
    ...(options.frameworkErrors ? { frameworkErrors: options.frameworkErrors } : {}),
  });
  // bodyParser off: Fastify's own JSON parser (with its __proto__ protection) is all the apps accept; Nest's
  // adapter would add a form-body parser as well.
  const app = await NestFactory.create<NestFastifyApplication>(module, adapter, {
    bufferLogs: true,
    bodyParser: false,
  });
  const logger = app.get(Logger);
  app.useLogger(logger);
  app.flushLogs();
  // Every answer names the trace its request was served in (W3C Trace Context level 2 `traceresponse`): the
  // caller's trace when it sent a valid `traceparent`, else a new one; the events it published carry the same.
  const fastify = app.getHttpAdapter().getInstance();
  fastify.addHook('onRequest', (request, reply, done) => {
    void reply.header(TRACERESPONSE_HEADER, formatTraceparent(requestTrace(request.raw)));
    done();
  });
  const requestLogger = await app.resolve(PinoLogger);
  requestLogger.setContext('HTTP');
  logFailedRequests(fastify, requestLogger);
  options.configure?.(app);
  const stopping = installProcessHandlers(app, logger, options.shutdownTimeoutMs ?? 25_000);
  if (options.beforeListen) {
    // Modules are initialized (their onModuleInit hooks run: connections opened) by init(), which listen() would call.
    await app.init();
    await options.beforeListen(app);
    // SIGTERM while it waited: the app is closing, and a closed app must not start listening.
    if (stopping()) return app;
  }
  await app.listen(options.port, options.host);
  logger.log(`${options.name} listening on ${await app.getUrl()}`, 'Bootstrap');
  return app;
}

/** Wires SIGTERM/SIGINT to a drain and fatal errors to an exit; returns whether a drain has begun. */
function installProcessHandlers(app: INestApplicationContext, logger: Logger, timeoutMs: number): () => boolean {
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn(`${signal} again: exiting without finishing the drain`, 'Shutdown');
      process.exit(1);
    }
    stopping = true;
    logger.log(`${signal}: draining`, 'Shutdown');
    const timer = setTimeout(() => {
      logger.error(`drain did not finish in ${timeoutMs} ms: exiting`, 'Shutdown');
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    app.close().then(
      () => {
        logger.log('stopped cleanly', 'Shutdown');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'error while draining', 'Shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  const crash = (kind: string) => (error: unknown) => {
    logger.error({ err: error }, `${kind}: exiting`, 'Process');
    process.exit(1);
  };
  process.on('uncaughtException', crash('uncaught exception'));
  process.on('unhandledRejection', crash('unhandled rejection'));
  return () => stopping;
}
