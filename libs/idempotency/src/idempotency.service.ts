import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { PinoLogger } from 'nestjs-pino';
import { IdempotencyRepository } from './idempotency.repository.js';
import type { Claim, IdempotencyUnavailable, StoredResponse } from './idempotency.types.js';

/**
 * Idempotency-Key semantics (IETF httpapi draft): a repeat of a completed request gets the first response
 * and changes nothing; a repeat while the first runs gets 409; the same key with a different body gets 422.
 * Keys are scoped per client, so one client's keys never reveal another's, and kept for the configured TTL.
 *
 * Redis holds the records. When Redis is down, requests go on unprotected rather than failing: the event id
 * is still derived from the key, so the dedupe ledger keeps Postgres exact; only the replayed response is lost.
 */
@Injectable()
export class IdempotencyService {
  constructor(
    private readonly repository: IdempotencyRepository,
    private readonly config: AppConfig,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext('Idempotency');
  }

  /** A stable fingerprint of a request body (after validation and defaults). */
  static fingerprint(body: unknown): string {
    return createHash('sha256').update(JSON.stringify(body)).digest('base64url');
  }

  async claim(
    clientId: string,
    entries: { key: string; fingerprint: string }[],
  ): Promise<Claim[] | IdempotencyUnavailable> {
    let records;
    try {
      records = await this.repository.claim(clientId, entries, this.config.api.idempotency.lockMs);
    } catch (error) {
      this.logger.warn({ err: error }, 'idempotency records unavailable: going on without replay protection');
      return { kind: 'unavailable' };
    }
    return records.map((record, i): Claim => {
      if (record === true) return { kind: 'claimed' };
      // The holder expired between SET NX and GET: a rare race; the client's retry will claim it.
      if (record === null) return { kind: 'in-flight' };
      if (record.h !== entries[i]?.fingerprint) return { kind: 'mismatch' };
      return record.s === 'd' ? { kind: 'replay', response: record.r } : { kind: 'in-flight' };
    });
  }

  async complete(
    clientId: string,
    entries: { key: string; fingerprint: string; response: StoredResponse }[],
  ): Promise<void> {
    try {
      await this.repository.complete(clientId, entries, this.config.api.idempotency.ttlSeconds);
    } catch (error) {
      this.logger.warn({ err: error }, 'could not store idempotent responses');
    }
  }

  /** Frees keys whose request failed, so that a retry can run. */
  async release(clientId: string, keys: string[]): Promise<void> {
    try {
      await this.repository.release(clientId, keys);
    } catch (error) {
      this.logger.warn({ err: error }, 'could not release idempotency keys; they expire with their lease');
    }
  }
}
