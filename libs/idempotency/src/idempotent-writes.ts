import { Injectable } from '@nestjs/common';
import { IdempotencyService } from './idempotency.service.js';

export interface KeyedWrite<I> {
  /** The client's idempotency key for this write, if it sent one. */
  key: string | undefined;
  /** Fingerprint of what the write does (see IdempotencyService.fingerprint). */
  fingerprint: string;
  value: I;
}

export type WriteAnswer<R> =
  | { status: 'accepted'; result: R }
  | { status: 'duplicate'; result: R }
  | { status: 'in-flight' }
  | { status: 'conflict' };

/**
 * Runs writes under their idempotency keys, one or a thousand at a time: repeats of completed writes are
 * answered with their stored result and not written again; writes whose key is held by a running request
 * or was used for something else are not written; the rest are written together by `write`, and their
 * results stored under their keys. If `write` fails, the keys are released so that a retry can run.
 */
@Injectable()
export class IdempotentWrites {
  constructor(private readonly idempotency: IdempotencyService) {}

  async run<I, R>(
    clientId: string,
    writes: KeyedWrite<I>[],
    write: (values: I[]) => Promise<R[]>,
  ): Promise<WriteAnswer<R>[]> {
    const keyedIndexes = writes.flatMap((w, i) => (w.key === undefined ? [] : [i]));
    const answers: (WriteAnswer<R> | undefined)[] = new Array<WriteAnswer<R> | undefined>(writes.length);
    if (keyedIndexes.length > 0) {
      const claims = await this.idempotency.claim(
        clientId,
        keyedIndexes.map((i) => ({ key: writes[i]?.key ?? '', fingerprint: writes[i]?.fingerprint ?? '' })),
      );
      if (Array.isArray(claims)) {
        claims.forEach((claim, j) => {
          const i = keyedIndexes[j] ?? 0;
          if (claim.kind === 'replay') answers[i] = { status: 'duplicate', result: claim.response.body as R };
          else if (claim.kind === 'in-flight') answers[i] = { status: 'in-flight' };
          else if (claim.kind === 'mismatch') answers[i] = { status: 'conflict' };
        });
      }
    }
    const fresh = writes.flatMap((w, i) => (answers[i] === undefined ? [{ i, w }] : []));
    const claimedKeys = fresh.flatMap(({ w }) => (w.key === undefined ? [] : [w.key]));
    let results: R[];
    try {
      results = await write(fresh.map(({ w }) => w.value));
    } catch (error) {
      await this.idempotency.release(clientId, claimedKeys);
      throw error;
    }
    fresh.forEach(({ i }, j) => (answers[i] = { status: 'accepted', result: results[j] as R }));
    await this.idempotency.complete(
      clientId,
      fresh.flatMap(({ w }, j) =>
        w.key === undefined
          ? []
          : [{ key: w.key, fingerprint: w.fingerprint, response: { status: 200, body: results[j] } }],
      ),
    );
    return answers as WriteAnswer<R>[];
  }
}
