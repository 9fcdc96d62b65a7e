import { type DynamicModule, Global, Module } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { LoggerModule } from 'nestjs-pino';
import { Lifecycle } from './lifecycle.service.js';
import { secretScrubber } from './secret-scrubber.js';
import { ServiceInfo, type ServiceName } from './service-info.js';

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
            // No request logger (pino-http) on any route: it built a child logger with the request's serialized,
            // redacted bindings for every request, even when no line was written (about 14% of a no-op request).
            // Failed requests are logged once answered (request-log.ts); successful ones are counted in metrics.
            forRoutes: [],
            pinoHttp: {
              level: config.log.level,
              base: { service },
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
            },
          }),
        }),
      ],
      providers: [Lifecycle, { provide: ServiceInfo, useValue: { name: service } satisfies ServiceInfo }],
      exports: [Lifecycle, ServiceInfo],
    };
  }
}
