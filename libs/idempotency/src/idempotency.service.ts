import { Injectable } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { PinoLogger } from 'nestjs-pino';
import { type KeyState, answered, holding, idempotencyKey, keyState } from './idempotency.records.js';
import { type HeldKey, IdempotencyRepository } from './idempotency.repository.js';

/** A key a request asks for, and what the request does (its fingerprint). */
export interface KeyRequest {
  key: string;
  fingerprint: string;
}

/** What a request learns of its key: it holds it now, the key's state (replay, 409, 422), or Redis is away. */
export type Claim = { kind: 'claimed'; held: HeldKey } | KeyState | { kind: 'unprotected' };

/** A write of a request, with the client's key when it sent one; `claimKeyed` records what its claim found. */
export interface KeyedWrite {
  clientKey: string | undefined;
  print: string;
  held?: HeldKey | undefined;
  state?: KeyState | undefined;
}

/**
 * Idempotency-Key semantics (IETF httpapi draft): a repeat of a completed request gets the first answer and changes
 * nothing; a repeat while the first runs gets 409; the same key with a different request gets 422. Keys are scoped
 * per client and kept API_IDEMPOTENCY_TTL_SECONDS. A request holds its key with a record of its own (owner), so a
 * request that outlived its lease never completes or releases a key that another request took since.
 *
 * Redis holds the records. When Redis is down, requests go on unprotected rather than failing: the event id carries
 * the key and the request's fingerprint, so the dedupe ledger still applies a repeat once (docs/architecture.md).
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

  get leaseMs(): number {
    return this.config.api.idempotency.lockMs;
  }

  /** The key and record a request would hold `request.key` with, for scripts that take it with other work. */
  hold(clientId: string, request: KeyRequest): HeldKey {
    return { key: idempotencyKey(clientId, request.key), hold: holding(request.fingerprint) };
  }

  /** What a key held by someone else means for a request with `fingerprint`. */
  state(record: string, fingerprint: string): KeyState {
    return keyState(record, fingerprint);
  }

  async claim(clientId: string, requests: KeyRequest[]): Promise<Claim[]> {
    const held = requests.map((r) => this.hold(clientId, r));
    let records: (string | null)[];
    try {
      records = await this.repository.claim(held, this.leaseMs);
    } catch (error) {
      this.logger.warn({ err: error }, 'idempotency records unavailable: going on without replay protection');
      return requests.map(() => ({ kind: 'unprotected' }));
    }
    return records.map((record, i): Claim => {
      const mine = held[i] as HeldKey;
      return record === null ? { kind: 'claimed', held: mine } : keyState(record, requests[i]?.fingerprint ?? '');
    });
  }

  /**
   * Claims the keys of the writes that carry one, and records on each what it found: `held` (the key is its own
   * now) or `state` (a replay, 409 or 422 to answer with). Neither when Redis is away (unprotected).
   */
  async claimKeyed(clientId: string, writes: KeyedWrite[]): Promise<void> {
    const keyed = writes.filter((w) => w.clientKey !== undefined);
    if (keyed.length === 0) return;
    const claims = await this.claim(
      clientId,
      keyed.map((w) => ({ key: w.clientKey ?? '', fingerprint: w.print })),
    );
    claims.forEach((claim, i) => {
      const w = keyed[i] as KeyedWrite;
      if (claim.kind === 'claimed') w.held = claim.held;
      else if (claim.kind !== 'unprotected') w.state = claim;
    });
  }

  /** Stores each answer (status and JSON body) under its key, for repeats to get. */
  async complete(entries: { held: HeldKey; fingerprint: string; status: number; body: string }[]): Promise<void> {
    try {
      await this.repository.complete(
        entries.map((e) => ({ ...e.held, answer: answered(e.fingerprint, e.status, e.body) })),
        this.config.api.idempotency.ttlSeconds,
      );
    } catch (error) {
      this.logger.warn({ err: error }, 'could not store idempotent answers');
    }
  }

  /** Frees keys whose request failed, so that a retry can run. */
  async release(held: HeldKey[]): Promise<void> {
    try {
      await this.repository.release(held);
    } catch (error) {
      this.logger.warn({ err: error }, 'could not release idempotency keys; they expire with their lease');
    }
  }
}
