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
