import { type DynamicModule, Module } from '@nestjs/common';
import type { AppConfig } from '@app/config';
import { CoreModule } from '@app/core';

@Module({})
export class AppModule {
  static forRoot(config?: AppConfig): DynamicModule {
    return { module: AppModule, imports: [CoreModule.forRoot('api', { config })] };
  }
}
