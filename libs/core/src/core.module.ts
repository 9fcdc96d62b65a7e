import { type DynamicModule, Module, type Type } from '@nestjs/common';
import { type AppConfig, ConfigModule, loadConfig } from '@app/config';
import { DbModule } from '@app/db';
import { HealthModule, type ReadinessPolicy } from '@app/health';
import { KafkaModule } from '@app/kafka';
import { MetricsModule } from '@app/metrics';
import { PlatformModule, type ServiceName } from '@app/platform';
import { RedisModule } from '@app/redis';
import { AdminServer, adminListener } from './admin.server.js';

export interface CoreOptions {
  /** The app's validated config; loaded from the environment when omitted. */
  config?: AppConfig;
  /** What `/health/ready` checks (default: Postgres, Redis and Kafka answer). */
  readiness?: Type<ReadinessPolicy>;
  /** Modules the readiness policy's dependencies come from. */
  readinessImports?: DynamicModule['imports'];
}

/**
 * What every long-running app needs: validated config, logging, the Postgres pool, Redis, Kafka,
 * `/metrics`, `/health/live` and `/health/ready`. The last three are served on the app's own port, or, when
 * API_ADMIN_PORT / CONSUMER_ADMIN_PORT is set, by an AdminServer on that port only.
 */
@Module({})
export class CoreModule {
  static forRoot(service: ServiceName, options: CoreOptions = {}): DynamicModule {
    const config = options.config ?? loadConfig();
    const routes = adminListener(config, service) === undefined;
    return {
      module: CoreModule,
      imports: [
        ConfigModule.forRoot(config),
        PlatformModule.forRoot(service),
        DbModule,
        RedisModule,
        KafkaModule,
        MetricsModule.forRoot(routes),
        HealthModule.forRoot({ readiness: options.readiness, imports: options.readinessImports, routes }),
      ],
      providers: routes ? [] : [AdminServer],
      exports: routes ? [] : [AdminServer],
    };
  }
}
