import { type DynamicModule, Global, Module } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { LoggerModule } from 'nestjs-pino';
import { Lifecycle } from './lifecycle.service.js';
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
            pinoHttp: {
              level: config.log.level,
              base: { service },
              // High-write clients send thousands of requests a second: successful requests are counted in
              // metrics, not logged. Client errors log at warn, server errors at error.
              customLogLevel: (_req, res, error) =>
                error !== undefined || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'silent',
              redact: ['req.headers.authorization', 'req.headers["x-api-key"]'],
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
