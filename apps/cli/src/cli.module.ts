import { type DynamicModule, Module } from '@nestjs/common';
import { type AppConfig, ConfigModule } from '@app/config';
import { KafkaModule } from '@app/kafka';
import { PlatformModule } from '@app/platform';

@Module({})
export class CliModule {
  static forRoot(config: AppConfig): DynamicModule {
    return { module: CliModule, imports: [ConfigModule.forRoot(config), PlatformModule.forRoot('cli'), KafkaModule] };
  }
}
