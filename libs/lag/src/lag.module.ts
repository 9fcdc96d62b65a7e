import { Module } from '@nestjs/common';
import { StoreModule } from '@app/store';
import { LagMonitor } from './lag.monitor.js';

/** Needs the kafka and db modules in the app (CoreModule provides them). */
@Module({ imports: [StoreModule], providers: [LagMonitor], exports: [LagMonitor] })
export class LagModule {}
