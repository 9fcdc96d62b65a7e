import { type DynamicModule, Module } from '@nestjs/common';
import { type AppConfig, ConfigModule } from '@app/config';
import { CounterViewModule } from '@app/counter-view';
import { DbModule } from '@app/db';
import { KafkaModule } from '@app/kafka';
import { LagModule } from '@app/lag';
import { PlatformModule } from '@app/platform';
import { RedisModule } from '@app/redis';
import { StoreModule } from '@app/store';

@Module({})
export class CliModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: CliModule,
      imports: [
        ConfigModule.forRoot(config),
        PlatformModule.forRoot('cli'),
        DbModule,
        RedisModule,
        KafkaModule,
        StoreModule,
        LagModule,
        CounterViewModule,
      ],
    };
  }
}
