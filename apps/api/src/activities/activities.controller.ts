import { Body, Controller, Get, Param, Post, Query, Res, UseGuards, UseInterceptors } from '@nestjs/common';
import { ThrottlerGuard } from '@nestjs/throttler';
import { AppConfig } from '@app/config';
import { IdempotencyService, IdempotentWrites, type WriteAnswer } from '@app/idempotency';
import type { TraceContext } from '@app/platform';
import type { ActivityRecord } from '@app/store';
import type { FastifyReply } from 'fastify';
import { ApiKeyGuard } from '../auth/api-key.guard.js';
import { ClientId } from '../auth/client.js';
import type { WriteModeUsed } from '../counters/counters.service.js';
import { IdempotencyInFlightError, IdempotencyMismatchError, ValidationError } from '../http/api.error.js';
import { IdempotencyKey } from '../http/headers.js';
import { Trace } from '../http/trace.js';
import { ZodPipe } from '../http/zod.pipe.js';
import { ApiMetrics } from '../ingest/api.metrics.js';
import { eventId } from '../ingest/event-ids.js';
import { InFlightInterceptor } from '../ingest/in-flight.interceptor.js';
import {
  type ActivityInput,
  activityBatch,
  activityInput,
  actorParams,
  encodeCursor,
  feedQuery,
} from './activities.dto.js';
import { ActivitiesService } from './activities.service.js';

interface ActivityResult {
  id: string;
  mode: WriteModeUsed;
}

const statusOf = (mode: WriteModeUsed) => (mode === 'write-behind' ? 202 : 200);

@Controller('v1')
@UseGuards(ApiKeyGuard, ThrottlerGuard)
export class ActivitiesController {
  constructor(
    private readonly activities: ActivitiesService,
    private readonly idempotent: IdempotentWrites,
    private readonly config: AppConfig,
    private readonly metrics: ApiMetrics,
  ) {}

  @Post('activities')
  @UseInterceptors(InFlightInterceptor)
  async record(
    @ClientId() clientId: string,
    @IdempotencyKey() header: string | undefined,
    @Trace() trace: TraceContext,
    @Body(new ZodPipe(activityInput)) input: ActivityInput,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<ActivityResult> {
    if (header !== undefined && input.id !== undefined && header !== input.id) {
      throw new ValidationError([{ field: 'body.id', message: 'differs from the Idempotency-Key header' }]);
    }
    const [answer] = await this.writeAll(clientId, [{ ...input, id: input.id ?? header }], trace);
    switch (answer?.status) {
      case 'accepted':
      case 'duplicate':
        void reply.status(statusOf(answer.result.mode));
        return answer.result;
      case 'in-flight':
        throw new IdempotencyInFlightError('retry when the first request with this key has been answered');
      case 'conflict':
      case undefined:
        throw new IdempotencyMismatchError('use a new Idempotency-Key (or id) for a different activity');
    }
  }

  @Post('activities/batch')
  @UseInterceptors(InFlightInterceptor)
  async recordBatch(
    @ClientId() clientId: string,
    @Trace() trace: TraceContext,
    @Body() rawBody: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<{ accepted: number; mode: WriteModeUsed; results: object[] }> {
    const { activities } = new ZodPipe(activityBatch(this.config.api.batchMaxItems)).transform(rawBody, {
      type: 'body',
    });
    const answers = await this.writeAll(clientId, activities, trace);
    const modes = answers.flatMap((a) => (a.status === 'accepted' ? [a.result.mode] : []));
    const mode = modes[0] ?? this.config.api.writeMode.activities;
    void reply.status(statusOf(mode));
    return {
      accepted: modes.length,
      mode,
      results: answers.map((answer, i) =>
        answer.status === 'accepted' || answer.status === 'duplicate'
          ? { id: answer.result.id, status: answer.status, mode: answer.result.mode }
          : { id: eventId(clientId, activities[i]?.id), status: answer.status },
      ),
    };
  }

  @Get('actors/:actor/activities')
  async feed(
    @Param('actor', new ZodPipe(actorParams)) actor: string,
    @Query(new ZodPipe(feedQuery)) query: { limit: number; before?: { occurredAt: string; id: string } | undefined },
  ) {
    const items = await this.activities.feed(actor, query.limit, query.before);
    const last = items.at(-1);
    return {
      actor,
      items: items.map(({ acceptedAt: _acceptedAt, ...item }) => item),
      next: items.length === query.limit && last ? encodeCursor(last.occurredAt, last.id) : null,
    };
  }

  private async writeAll(
    clientId: string,
    inputs: ActivityInput[],
    trace: TraceContext,
  ): Promise<WriteAnswer<ActivityResult>[]> {
    const acceptedAt = Date.now();
    const answers = await this.idempotent.run<ActivityRecord, ActivityResult>(
      clientId,
      inputs.map((input) => {
        const record: ActivityRecord = {
          id: eventId(clientId, input.id),
          actor: input.actor,
          verb: input.verb,
          object: input.object,
          occurredAt: new Date(input.occurredAt ?? acceptedAt).toISOString(),
          data: input.data ?? null,
          acceptedAt,
        };
        // occurredAt is part of what the key stands for only when the client gave it.
        const { acceptedAt: _a, id: _id, ...what } = record;
        return {
          key: input.id,
          fingerprint: IdempotencyService.fingerprint({ ...what, occurredAt: input.occurredAt ?? null }),
          value: record,
        };
      }),
      async (records) => {
        const mode = await this.activities.write(records, trace);
        return records.map((r) => ({ id: r.id, mode }));
      },
    );
    this.metrics.idempotency('activity', answers);
    return answers;
  }
}
