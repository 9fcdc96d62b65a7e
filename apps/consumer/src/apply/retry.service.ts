import { Injectable } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { PinoLogger } from 'nestjs-pino';
import pRetry from 'p-retry';
import { ConsumerStatus, type Dependency } from '../health/consumer-status.service.js';
import { BatchAbandonedError } from './batch-abandoned.error.js';
import { ConsumerMetrics } from './consumer.metrics.js';
import { RetriesExhaustedError, classifyError, retryCause, statementFailureCode } from './error-classifier.js';
import { isRebalancing } from './kafka-errors.js';

/** What a retry loop needs from the batch it works for. */
export interface RetryScope {
  readonly topic: string;
  /** `<topic>/<partition>`: one failure per partition is tracked for readiness. */
  readonly partitionKey: string;
  /** Why the batch must be given up now (the consumer stops, the partition was revoked), or undefined. */
  abandonReason(): 'stopping' | 'stale' | undefined;
  /** kafkajs' heartbeat of this batch (throttled by kafkajs to one per heartbeat interval). */
  heartbeat(): Promise<void>;
}

export interface RetryOptions {
  /**
   * Retry every failure, permanent ones included. For the dead-letter produce and the offset advance past a
   * dead letter: nothing may move the offset past a bad record before its dead letter is in Kafka.
   */
  retryAll?: boolean;
  /**
   * Give up with RetriesExhaustedError after this many failures in a row that Postgres reported about the statement
   * itself (`statementFailureCode`); outages are retried without limit. Default: no limit.
   */
  maxStatementAttempts?: number;
}

/**
 * Retries transient failures with exponential backoff and jitter, for as long as the consumer runs and the batch
 * is current: a record is never dead-lettered because a dependency was away (G5). Only failures Postgres reports
 * about the statement itself can be bounded (`maxStatementAttempts`), since one record may cause them forever. Between attempts it heartbeats,
 * so a long Postgres outage does not get the consumer thrown out of its group (kafkajs heartbeats only between
 * batches, tulios/kafkajs#447), and it notices a rebalance or a shutdown there and gives the batch up.
 * Permanent failures are not retried: they reject at once for the caller to split the batch.
 */
@Injectable()
export class RetryService {
  private readonly minDelayMs: number;
  private readonly maxDelayMs: number;

  constructor(
    config: AppConfig,
    private readonly status: ConsumerStatus,
    private readonly metrics: ConsumerMetrics,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext('Retry');
    // The wait between two attempts is also the longest time without a heartbeat: keep it well inside the session.
    this.maxDelayMs = Math.min(config.consumer.retry.maxDelayMs, Math.floor(config.consumer.sessionTimeoutMs / 3));
    this.minDelayMs = Math.min(config.consumer.retry.minDelayMs, this.maxDelayMs);
  }

  async run<T>(
    scope: RetryScope,
    dependency: Dependency,
    operation: () => Promise<T>,
    options: RetryOptions = {},
  ): Promise<T> {
    let failingSince: number | undefined;
    let attempts = 0;
    // Failures about the statement in a row: an outage in between starts the count again.
    let statementFailures = 0;
    let exhausted: RetriesExhaustedError | undefined;
    const limit = options.maxStatementAttempts ?? Number.POSITIVE_INFINITY;
    const retriable = (error: unknown) =>
      !(error instanceof BatchAbandonedError) &&
      exhausted === undefined &&
      (options.retryAll === true || classifyError(error).kind === 'transient');
    try {
      const result = await pRetry(
        async () => {
          attempts++;
          const why = scope.abandonReason();
          if (why) throw new BatchAbandonedError(why);
          return operation();
        },
        {
          retries: Number.POSITIVE_INFINITY,
          factor: 2,
          minTimeout: this.minDelayMs,
          maxTimeout: this.maxDelayMs,
          randomize: true,
          onFailedAttempt: async ({ error, attemptNumber, retryDelay }) => {
            const code = statementFailureCode(error);
            statementFailures = code === undefined ? 0 : statementFailures + 1;
            if (code !== undefined && statementFailures >= limit && options.retryAll !== true) {
              exhausted = new RetriesExhaustedError(error, code, statementFailures);
              this.logger.warn(
                { err: error, partition: scope.partitionKey, dependency, attempts: statementFailures, code },
                `the same failure of ${dependency} repeated ${statementFailures} times: splitting the chunk to find its record`,
              );
              return;
            }
            if (!retriable(error)) return;
            failingSince ??= Date.now();
            this.status.failureStarted(scope.partitionKey, dependency, error.message);
            this.metrics.retries.inc({ topic: scope.topic, dependency, cause: retryCause(error) });
            // One line for the first failure, then one per ten attempts: an outage must not flood the logs.
            if (attemptNumber === 1 || attemptNumber % 10 === 0) {
              this.logger.warn(
                { err: error, partition: scope.partitionKey, dependency, attempt: attemptNumber, retryDelay },
                `transient failure of ${dependency}, retrying`,
              );
            }
            await this.heartbeat(scope);
            const why = scope.abandonReason();
            if (why) throw new BatchAbandonedError(why);
          },
          shouldRetry: ({ error }) => retriable(error),
        },
      ).catch((error: unknown) => {
        throw exhausted ?? error;
      });
      if (failingSince !== undefined) {
        this.logger.info(
          { partition: scope.partitionKey, dependency, attempts, failedForMs: Date.now() - failingSince },
          `${dependency} recovered`,
        );
      }
      return result;
    } finally {
      if (failingSince !== undefined) this.status.failureEnded(scope.partitionKey);
    }
  }

  /**
   * Between two units of work that are not retries (the halves of a split chunk): heartbeats, so that a long split
   * keeps the member in its group, and gives the batch up when the consumer stops or the group rebalances.
   */
  async keepAlive(scope: RetryScope): Promise<void> {
    await this.heartbeat(scope);
    const why = scope.abandonReason();
    if (why) throw new BatchAbandonedError(why);
  }

  /** A heartbeat that fails because the group rebalances ends the batch; any other failure is the outage itself. */
  private async heartbeat(scope: RetryScope): Promise<void> {
    try {
      await scope.heartbeat();
    } catch (error) {
      if (isRebalancing(error)) throw new BatchAbandonedError('rebalancing', error);
      this.logger.debug({ err: error, partition: scope.partitionKey }, 'heartbeat failed');
    }
  }
}
