import type { KeyState } from '@app/idempotency';
import { IdempotencyInFlightError, IdempotencyMismatchError } from '../http/api.error.js';
import type { ApiMetrics, Entity } from './api.metrics.js';
import type { WriteModeUsed } from './write-path.js';

/** An answer ready to send: status and JSON body (serialized once: the same bytes are stored for replays). */
export interface Answer {
  status: number;
  body: string;
}

/** 202 when the write is in Kafka (applied later), 200 when it is in Postgres already. */
export const statusOf = (mode: WriteModeUsed): number => (mode === 'write-behind' ? 202 : 200);

/** The answer to a write whose Idempotency-Key someone else holds: the first answer again, or 409, or 422. */
export function answerHeld(metrics: ApiMetrics, entity: Entity, state: KeyState): Answer {
  switch (state.kind) {
    case 'replay':
      metrics.idempotency(entity, 'replayed');
      return { status: state.status, body: state.body };
    case 'in-flight':
      metrics.idempotency(entity, 'in_flight');
      throw new IdempotencyInFlightError('retry when the first request with this key has been answered');
    case 'mismatch':
      metrics.idempotency(entity, 'conflict');
      throw new IdempotencyMismatchError('use a new Idempotency-Key for a different request');
  }
}
