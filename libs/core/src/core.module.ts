import { type DynamicModule, Module } from '@nestjs/common';
import { type AppConfig, ConfigModule } from '@app/config';
import { DbModule } from '@app/db';
import { HealthModule } from '@app/health';
import { KafkaModule } from '@app/kafka';
import { MetricsModule } from '@app/metrics';
import { PlatformModule, type ServiceName } from '@app/platform';
import { RedisModule } from '@app/redis';

/**
 * What every long-running app needs: validated config, logging, the Postgres pool, Redis, Kafka,
 * `/metrics`, `/health/live` and `/health/ready`.
 */
@Module({})
export class CoreModule {
  static forRoot(service: ServiceName, config?: AppConfig): DynamicModule {
    return {
      module: CoreModule,
      imports: [
        ConfigModule.forRoot(config),
        PlatformModule.forRoot(service),
        DbModule,
        RedisModule,
        KafkaModule,
        MetricsModule,
        HealthModule,
      ],
    };
  }
}
