import { Body, Controller, Get, HttpCode, Param, Post, Res, UseGuards, UseInterceptors } from '@nestjs/common';
import { ThrottlerGuard } from '@nestjs/throttler';
import { AppConfig } from '@app/config';
import { IdempotencyService, IdempotentWrites } from '@app/idempotency';
import type { TraceContext } from '@app/platform';
import type { FastifyReply } from 'fastify';
import { ApiKeyGuard } from '../auth/api-key.guard.js';
import { ClientId } from '../auth/client.js';
import { IdempotencyInFlightError, IdempotencyMismatchError } from '../http/api.error.js';
import { IdempotencyKey } from '../http/headers.js';
import { Trace } from '../http/trace.js';
import { ZodPipe } from '../http/zod.pipe.js';
import { ApiMetrics } from '../ingest/api.metrics.js';
import { eventId } from '../ingest/event-ids.js';
import { InFlightInterceptor } from '../ingest/in-flight.interceptor.js';
import { counterName, incrementBody } from './counters.dto.js';
import { CountersService, type WriteModeUsed } from './counters.service.js';

/** What an increment answers, and what its idempotency key replays. */
interface IncrementResult {
  name: string;
  value: number | null;
  eventId: string;
  mode: WriteModeUsed;
}

const statusOf = (mode: WriteModeUsed) => (mode === 'write-behind' ? 202 : 200);

/** Only a write with an idempotency key is ever compared by fingerprint: the hash is not computed for the others. */
const fingerprint = (key: string | undefined, body: object) =>
  key === undefined ? '' : IdempotencyService.fingerprint(body);

@Controller('v1/counters')
@UseGuards(ApiKeyGuard, ThrottlerGuard)
export class CountersController {
  private readonly bodies: ReturnType<typeof incrementBody>;

  constructor(
    private readonly counters: CountersService,
    private readonly idempotent: IdempotentWrites,
    private readonly config: AppConfig,
    private readonly metrics: ApiMetrics,
  ) {
    this.bodies = incrementBody(config.api.maxIncrement);
  }

  @Post(':name/increment')
  @UseInterceptors(InFlightInterceptor)
  async increment(
    @ClientId() clientId: string,
    @Param('name', new ZodPipe(counterName)) name: string,
    @IdempotencyKey() key: string | undefined,
    @Trace() trace: TraceContext,
    @Body() rawBody: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<IncrementResult> {
    const { by } = new ZodPipe(this.bodies.single).transform(rawBody ?? {}, { type: 'body' });
    const [answer] = await this.idempotent.run<{ name: string; by: number }, IncrementResult>(
      clientId,
      [{ key, fingerprint: fingerprint(key, { counter: name, by }), value: { name, by } }],
      async ([item]) => {
        if (item === undefined) return [];
        const increment = { eventId: eventId(clientId, key), name: item.name, by: item.by };
        const written = await this.counters.write([increment], true, trace);
        return [{ name, value: written.values.get(name) ?? null, eventId: increment.eventId, mode: written.mode }];
      },
    );
    if (answer) this.metrics.idempotency('counter', [answer]);
    switch (answer?.status) {
      case 'accepted':
      case 'duplicate':
        void reply.status(statusOf(answer.result.mode));
        return answer.result;
      case 'in-flight':
        throw new IdempotencyInFlightError('retry when the first request with this key has been answered');
      case 'conflict':
      case undefined:
        throw new IdempotencyMismatchError('use a new Idempotency-Key for a different request');
    }
  }

  @Post('batch')
  @UseInterceptors(InFlightInterceptor)
  async batch(
    @ClientId() clientId: string,
    @Trace() trace: TraceContext,
    @Body() rawBody: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<{ accepted: number; mode: WriteModeUsed; results: object[] }> {
    const { increments } = new ZodPipe(this.bodies.batch(this.config.api.batchMaxItems)).transform(rawBody, {
      type: 'body',
    });
    let mode: WriteModeUsed = this.config.api.writeMode.counters;
    const answers = await this.idempotent.run<{ name: string; by: number; id?: string | undefined }, IncrementResult>(
      clientId,
      increments.map((item) => ({
        key: item.id,
        fingerprint: fingerprint(item.id, { counter: item.name, by: item.by }),
        value: item,
      })),
      async (items) => {
        const events = items.map((item) => ({ eventId: eventId(clientId, item.id), name: item.name, by: item.by }));
        const written = await this.counters.write(events, false, trace);
        mode = written.mode;
        return events.map((e) => ({ name: e.name, value: null, eventId: e.eventId, mode: written.mode }));
      },
    );
    this.metrics.idempotency('counter', answers);
    void reply.status(statusOf(mode));
    const results = answers.map((answer, i) => {
      const item = increments[i];
      switch (answer.status) {
        case 'accepted':
        case 'duplicate':
          return {
            name: answer.result.name,
            eventId: answer.result.eventId,
            status: answer.status,
            mode: answer.result.mode,
          };
        case 'in-flight':
        case 'conflict':
          return { name: item?.name, eventId: eventId(clientId, item?.id), status: answer.status };
      }
    });
    return { accepted: answers.filter((a) => a.status === 'accepted').length, mode, results };
  }

  @Get(':name')
  @HttpCode(200)
  async get(@Param('name', new ZodPipe(counterName)) name: string): Promise<{ name: string; value: number }> {
    return { name, value: await this.counters.value(name) };
  }
}
