import { Module } from '@nestjs/common';
import { StoreModule } from '@app/store';
import { CounterViewRepository } from './counter-view.repository.js';
import { CounterView } from './counter-view.service.js';

@Module({
  imports: [StoreModule],
  providers: [CounterViewRepository, CounterView],
  exports: [CounterView, CounterViewRepository],
})
export class CounterViewModule {}
