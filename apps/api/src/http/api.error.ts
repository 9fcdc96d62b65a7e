/**
 * The API's domain errors, in one place. Only `ProblemFilter` maps them to HTTP. Each carries the HTTP status
 * it means and a short problem type slug (`/problems/<type>`).
 */
export abstract class ApiError extends Error {
  abstract readonly status: number;
  abstract readonly type: string;
  abstract readonly title: string;
  /** Headers to send with the problem, e.g. Retry-After. */
  headers: Record<string, string> = {};
  /** Members of the problem beyond the standard ones (RFC 9457 extensions). */
  extensions: Record<string, unknown> = {};
}

export interface FieldError {
  /** Where, as a dotted path into the request: `body.increments.3.by`, `params.name`, `query.limit`. */
  field: string;
  message: string;
}

export class ValidationError extends ApiError {
  override readonly name = 'ValidationError';
  readonly status = 400;
  readonly type = 'validation';
  readonly title = 'The request is not valid';

  constructor(readonly errors: FieldError[]) {
    super(errors.map((e) => `${e.field}: ${e.message}`).join('; '));
  }
}

export class UnauthorizedError extends ApiError {
  override readonly name = 'UnauthorizedError';
  readonly status = 401;
  readonly type = 'unauthorized';
  readonly title = 'A valid API key is required';

  constructor(message: string) {
    super(message);
    this.headers = { 'WWW-Authenticate': 'Bearer' };
  }
}

/** The client sent more requests than its rate limit allows; come back after Retry-After. */
export class RateLimitedError extends ApiError {
  override readonly name = 'RateLimitedError';
  readonly status = 429;
  readonly type = 'rate-limited';
  readonly title = 'Too many requests for this client';

  constructor(retryAfterSeconds: number, limit: number) {
    super(`at most ${limit} requests per window`);
    this.headers = { 'Retry-After': String(retryAfterSeconds), 'X-RateLimit-Limit': String(limit) };
  }
}

export class IdempotencyInFlightError extends ApiError {
  override readonly name = 'IdempotencyInFlightError';
  readonly status = 409;
  readonly type = 'idempotency-key-in-flight';
  readonly title = 'A request with this Idempotency-Key is still being processed';
}

export class IdempotencyMismatchError extends ApiError {
  override readonly name = 'IdempotencyMismatchError';
  readonly status = 422;
  readonly type = 'idempotency-key-reused';
  readonly title = 'This Idempotency-Key was used with a different request';
}

/** The write would take a counter past the largest value JSON numbers hold exactly (2^53 - 1). Nothing was applied. */
export class CounterRangeError extends ApiError {
  override readonly name = 'CounterRangeError';
  readonly status = 422;
  readonly type = 'counter-out-of-range';
  readonly title = 'The counter would pass 9007199254740991';
}

/** The process has as much work in progress as it may hold (G6); come back after Retry-After. */
export class OverloadedError extends ApiError {
  override readonly name = 'OverloadedError';
  readonly status = 503;
  readonly type = 'overloaded';
  readonly title = 'Too many writes in progress';

  constructor(message: string, retryAfterSeconds: number) {
    super(message);
    this.headers = { 'Retry-After': String(retryAfterSeconds) };
  }
}

/** Neither Kafka nor Postgres took the write: nothing was acknowledged, nothing was applied. */
export class UnavailableError extends ApiError {
  override readonly name = 'UnavailableError';
  readonly status = 503;
  readonly type = 'unavailable';
  readonly title = 'The write could not be stored; nothing was applied';

  constructor(message: string, retryAfterSeconds: number, options?: { cause?: unknown }) {
    super(message, options);
    this.headers = { 'Retry-After': String(retryAfterSeconds) };
  }
}

/**
 * Neither Kafka acknowledged the write nor Postgres took it, but the events were sent to Kafka and may still land
 * there (a send that timed out). The client must not count it as failed: a retry with the same body and this
 * Idempotency-Key is applied at most once, whatever happened to the first.
 */
export class OutcomeUnknownError extends ApiError {
  override readonly name = 'OutcomeUnknownError';
  readonly status = 503;
  readonly type = 'outcome-unknown';
  readonly title = 'The write may have been stored: retry it with the same Idempotency-Key';

  /**
   * `retry`: for a single write, the key to send again and the event id it stands for; for a batch, the same per item
   * (`items`, in the order sent), to send again as the items' `id`.
   */
  constructor(
    message: string,
    retryAfterSeconds: number,
    retry: { idempotencyKey: string; eventId: string } | { items: { id: string; eventId: string }[] },
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.headers = { 'Retry-After': String(retryAfterSeconds) };
    if ('idempotencyKey' in retry) this.headers['Idempotency-Key'] = retry.idempotencyKey;
    this.extensions = { ...retry };
  }
}

/**
 * A read that neither Redis nor Postgres could serve now (Postgres down, or every pooled connection busy past its
 * wait): answered 503 with Retry-After, like a refused write (G6), not as an internal error.
 */
export class ReadUnavailableError extends ApiError {
  override readonly name = 'ReadUnavailableError';
  readonly status = 503;
  readonly type = 'unavailable';
  readonly title = 'The data could not be read now';

  constructor(message: string, retryAfterSeconds: number, options?: { cause?: unknown }) {
    super(message, options);
    this.headers = { 'Retry-After': String(retryAfterSeconds) };
  }
}
