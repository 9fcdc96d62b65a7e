import { Module } from '@nestjs/common';
import { CounterViewModule } from '@app/counter-view';
import { LagModule } from '@app/lag';
import { ViewSweeper } from './view-sweeper.service.js';

/** The Redis view's upkeep beyond each batch's reconcile: the periodic sweep of its pending deltas. */
@Module({ imports: [CounterViewModule, LagModule], providers: [ViewSweeper] })
export class ViewModule {}
