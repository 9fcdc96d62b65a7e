import { type DynamicModule, Global, Module } from '@nestjs/common';
import { AppConfig } from './app-config.js';
import { loadConfig } from './load-config.js';

@Global()
@Module({})
export class ConfigModule {
  /** Pass the config `main.ts` already validated, or let the module load it from the environment. */
  static forRoot(config: AppConfig = loadConfig()): DynamicModule {
    return { module: ConfigModule, providers: [{ provide: AppConfig, useValue: config }], exports: [AppConfig] };
  }
}
