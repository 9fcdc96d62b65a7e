import { Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { AppConfig } from '@app/config';
import { requestTrace } from '@app/platform';
import { ApiAccess, sendJson } from '../http/access.js';
import { mountRoutes } from '../http/routes.js';
import { uniqueIds } from '../http/validation.js';
import { counterBodies, counterNameParam, idempotencyKeyHeader, valueAnswer } from './counters.schemas.js';
import { CountersService } from './counters.service.js';

/** The counter routes (docs/architecture.md, section 4): parse and check the request, call the service, answer. */
@Injectable()
export class CountersRoutes implements OnModuleInit {
  private readonly bodies: ReturnType<typeof counterBodies>;

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly access: ApiAccess,
    private readonly counters: CountersService,
    config: AppConfig,
  ) {
    this.bodies = counterBodies(config.api.maxIncrement, config.api.batchMaxItems);
  }

  onModuleInit(): void {
    mountRoutes(this.adapterHost, this.access, (scope) => {
      scope.post<{ Params: { name: string } }>('/v1/counters/:name/increment', async (request, reply) => {
        const clientId = this.access.admit(request);
        const name = counterNameParam(request.params.name);
        const header = request.headers['idempotency-key'];
        const id = header === undefined ? undefined : idempotencyKeyHeader(header);
        const { by } = this.bodies.single(request.body ?? {});
        const trace = requestTrace(request.raw);
        const answer = await this.access.write(() => this.counters.increment(clientId, { name, by, id }, trace));
        return sendJson(reply, answer.status, answer.body);
      });

      scope.post('/v1/counters/batch', async (request, reply) => {
        const clientId = this.access.admit(request);
        const { increments } = this.bodies.batch(request.body);
        uniqueIds('body.increments', increments);
        const trace = requestTrace(request.raw);
        const answer = await this.access.write(() => this.counters.batch(clientId, increments, trace));
        return sendJson(reply, answer.status, answer.body);
      });

      scope.get<{ Params: { name: string } }>('/v1/counters/:name', async (request, reply) => {
        this.access.admit(request);
        const name = counterNameParam(request.params.name);
        return sendJson(reply, 200, valueAnswer({ name, value: await this.counters.value(name) }));
      });
    });
  }
}
