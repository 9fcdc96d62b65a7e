import { type DynamicModule, Global, Module, RequestMethod } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { LoggerModule } from 'nestjs-pino';
import { Lifecycle } from './lifecycle.service.js';
import { secretScrubber } from './secret-scrubber.js';
import { ServiceInfo, type ServiceName } from './service-info.js';
import { requestTrace } from './trace-context.js';

/** Logging (pino, JSON lines) and the process lifecycle, shared by every app. */
@Global()
@Module({})
export class PlatformModule {
  static forRoot(service: ServiceName): DynamicModule {
    return {
      module: PlatformModule,
      imports: [
        LoggerModule.forRootAsync({
          inject: [AppConfig],
          useFactory: (config: AppConfig) => ({
            // nestjs-pino's default route, `{/*splat}`, matches no request on @nestjs/platform-fastify 12: pino-http
            // never ran, so no request was logged (not even a 5xx) and no line carried its traceId. `{*splat}`
            // matches every path, `/` included (issue 8, found by test/security/no-secrets-in-logs.test.ts).
            forRoutes: [{ path: '{*splat}', method: RequestMethod.ALL }],
            pinoHttp: {
              level: config.log.level,
              base: { service },
              // High-write clients send thousands of requests a second: successful requests are counted in
              // metrics, not logged. Client errors log at warn, server errors at error. A 503 or 429 is the
              // backpressure answer (G6), also counted in metrics: under an overload one line per refused request
              // would flood the log, so they log at debug (as do failing readiness probes).
              customLogLevel: (_req, res, error) => {
                if (res.statusCode === 503 || res.statusCode === 429) return 'debug';
                if (error !== undefined || res.statusCode >= 500) return 'error';
                return res.statusCode >= 400 ? 'warn' : 'silent';
              },
              // Credentials a request carries. And ioredis puts the arguments of a failed command on its error, so a
              // refused `HELLO 3 AUTH default <password>` (or AUTH) would print the password (issue 8).
              redact: [
                'req.headers.authorization',
                'req.headers["x-api-key"]',
                'req.headers["proxy-authorization"]',
                'req.headers.cookie',
                'err.command.args',
                'err.cause.command.args',
              ],
              // The last line of defence: every configured secret (AppConfig.secrets) is cut out of every line,
              // wherever a library put it.
              hooks: { streamWrite: secretScrubber(config.secrets) },
              // Every line logged while serving a request names its trace (W3C traceparent, see trace-context.ts).
              customProps: (req) => ({ traceId: requestTrace(req).traceId }),
            },
          }),
        }),
      ],
      providers: [Lifecycle, { provide: ServiceInfo, useValue: { name: service } satisfies ServiceInfo }],
      exports: [Lifecycle, ServiceInfo],
    };
  }
}
