import { type DynamicModule, Module } from '@nestjs/common';
import type { AppConfig } from '@app/config';
import { CoreModule } from '@app/core';
import { ApplyModule } from './apply/apply.module.js';
import { ConsumerReadiness } from './health/consumer-readiness.policy.js';
import { ConsumerStatusModule } from './health/consumer-status.module.js';
import { ReplayModule } from './replay/replay.module.js';
import { ViewModule } from './view/view.module.js';

@Module({})
export class AppModule {
  static forRoot(config?: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        CoreModule.forRoot('consumer', {
          config,
          readiness: ConsumerReadiness,
          readinessImports: [ConsumerStatusModule],
        }),
        ApplyModule,
        ReplayModule,
        ViewModule,
      ],
    };
  }
}
