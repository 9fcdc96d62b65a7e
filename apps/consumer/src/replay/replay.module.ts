import { Module } from '@nestjs/common';
import { StoreModule } from '@app/store';
import { ApplyModule } from '../apply/apply.module.js';
import { ReplayListener } from './replay-listener.service.js';

/** Operators' replays on a running group: see ReplayListener. */
@Module({ imports: [StoreModule, ApplyModule], providers: [ReplayListener] })
export class ReplayModule {}
