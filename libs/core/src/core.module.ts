import { type DynamicModule, Module, type Type } from '@nestjs/common';
import { type AppConfig, ConfigModule } from '@app/config';
import { DbModule } from '@app/db';
import { HealthModule, type ReadinessPolicy } from '@app/health';
import { KafkaModule } from '@app/kafka';
import { MetricsModule } from '@app/metrics';
import { PlatformModule, type ServiceName } from '@app/platform';
import { RedisModule } from '@app/redis';

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
 * `/metrics`, `/health/live` and `/health/ready`.
 */
@Module({})
export class CoreModule {
  static forRoot(service: ServiceName, options: CoreOptions = {}): DynamicModule {
    return {
      module: CoreModule,
      imports: [
        ConfigModule.forRoot(options.config),
        PlatformModule.forRoot(service),
        DbModule,
        RedisModule,
        KafkaModule,
        MetricsModule,
        HealthModule.forRoot(options.readiness, options.readinessImports),
      ],
    };
  }
}
