import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { DependenciesHealth } from './dependencies.health.js';
import { HealthController } from './health.controller.js';

/** `/health/live` and `/health/ready`. Needs the db, redis, kafka and platform modules in the app. */
@Module({
  imports: [TerminusModule.forRoot({ logger: false })],
  controllers: [HealthController],
  providers: [DependenciesHealth],
  exports: [DependenciesHealth],
})
export class HealthModule {}
