import { Module } from '@nestjs/common';
import { StoreModule } from '@app/store';
import { CounterViewRepository } from './counter-view.repository.js';
import { CounterView } from './counter-view.service.js';
import { ViewSweep } from './view-sweep.js';

@Module({
  imports: [StoreModule],
  providers: [CounterViewRepository, CounterView, ViewSweep],
  exports: [CounterView, CounterViewRepository, ViewSweep],
})
export class CounterViewModule {}
