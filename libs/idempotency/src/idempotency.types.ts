/** The stored answer to a request, replayed for a repeat of it. */
export interface StoredResponse {
  status: number;
  body: unknown;
}

/** What a key says when a request claims it. */
export type Claim =
  /** The key is new: the caller owns it and must `complete` or `release` it. */
  | { kind: 'claimed' }
  /** The same request completed before: answer with its stored response, do nothing else. */
  | { kind: 'replay'; response: StoredResponse }
  /** The same request is still being processed by someone (409). */
  | { kind: 'in-flight' }
  /** The key was used with a different request body (422). */
  | { kind: 'mismatch' };

/** Redis is unreachable: the request goes on without replay protection (the ledger still dedupes). */
export interface IdempotencyUnavailable {
  kind: 'unavailable';
}
