import { Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { AppConfig } from '@app/config';
import { requestTrace } from '@app/platform';
import { ValidationError } from '../http/api.error.js';
import { ApiAccess, sendJson } from '../http/access.js';
import { mountRoutes } from '../http/routes.js';
import { uniqueIds } from '../http/validation.js';
import { idempotencyKeyHeader } from '../counters/counters.schemas.js';
import { activityBodies, actorParam, encodeCursor, feedQuery } from './activities.schemas.js';
import { ActivitiesService } from './activities.service.js';

/** The activity routes and the actor feed (docs/architecture.md, section 4). */
@Injectable()
export class ActivitiesRoutes implements OnModuleInit {
  private readonly bodies: ReturnType<typeof activityBodies>;

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly access: ApiAccess,
    private readonly activities: ActivitiesService,
    config: AppConfig,
  ) {
    this.bodies = activityBodies(config.api.batchMaxItems);
  }

  onModuleInit(): void {
    mountRoutes(this.adapterHost, this.access, (scope) => {
      scope.post('/v1/activities', async (request, reply) => {
        const clientId = this.access.admit(request);
        const header = request.headers['idempotency-key'];
        const key = header === undefined ? undefined : idempotencyKeyHeader(header);
        const input = this.bodies.single(request.body);
        if (key !== undefined && input.id !== undefined && key !== input.id) {
          throw new ValidationError([{ field: 'body.id', message: 'differs from the Idempotency-Key header' }]);
        }
        const trace = requestTrace(request.raw);
        const answer = await this.access.write(() =>
          this.activities.record(clientId, { ...input, id: input.id ?? key }, trace),
        );
        return sendJson(reply, answer.status, answer.body);
      });

      scope.post('/v1/activities/batch', async (request, reply) => {
        const clientId = this.access.admit(request);
        const { activities } = this.bodies.batch(request.body);
        uniqueIds('body.activities', activities);
        const trace = requestTrace(request.raw);
        const answer = await this.access.write(() => this.activities.recordBatch(clientId, activities, trace));
        return sendJson(reply, answer.status, answer.body);
      });

      scope.get<{ Params: { actor: string }; Querystring: Record<string, unknown> }>(
        '/v1/actors/:actor/activities',
        async (request, reply) => {
          this.access.admit(request);
          const actor = actorParam(request.params.actor);
          const { limit, before } = feedQuery(request.query);
          const items = await this.activities.feed(actor, limit, before);
          const last = items.at(-1);
          return sendJson(
            reply,
            200,
            JSON.stringify({
              actor,
              items: items.map(({ acceptedAt: _acceptedAt, ...item }) => item),
              next: items.length === limit && last ? encodeCursor(last.occurredAt, last.id) : null,
            }),
          );
        },
      );
    });
  }
}
