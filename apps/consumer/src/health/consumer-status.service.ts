import { Injectable } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { PinoLogger } from 'nestjs-pino';

export type Dependency = 'postgres' | 'kafka';

interface Failure {
  dependency: Dependency;
  since: number;
  error: string;
}

/**
 * What the consumer is doing, for readiness (G5: no silent wedge). Fed by the kafkajs lifecycle events (joined,
 * crashed), by the retry loops (a transient failure started or ended, per partition) and by the partitions held
 * because their stored offset belongs to an older log (PartitionHolds).
 *
 * kafkajs restarts a crashed consumer by itself (restartOnFailure) and keeps failing quietly when the cause
 * persists; one production incident ran 14 days with Postgres down and health checks green. So a crash, and a
 * retry loop that has been failing for a while, both turn readiness false until the consumer is back in its group
 * and applying again.
 */
@Injectable()
export class ConsumerStatus {
  private joined = false;
  private generationCount = 0;
  private crash: { at: number; error: string } | undefined;
  private readonly failures = new Map<string, Failure>();
  /** Partitions held (their stored offset belongs to an older log), with what readiness says about each. */
  private readonly held = new Map<string, string>();
  private readonly stallAfterMs: number;

  constructor(
    config: AppConfig,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext('ConsumerStatus');
    this.stallAfterMs = config.consumer.stallUnreadyMs;
  }

  /**
   * Grows with every rebalance and join this process sees. A batch that started in an older generation is stale:
   * its partition may have moved to another member.
   */
  get generation(): number {
    return this.generationCount;
  }

  /** kafkajs REBALANCING: the group is rebalancing; batches in flight must not commit to Kafka any more. */
  onRebalancing(): void {
    this.generationCount++;
    // A state change, logged once per rebalance (the join that ends it is logged by the consumer).
    this.logger.info({ generation: this.generationCount }, 'consumer group rebalancing: batches in flight stop');
  }

  /** kafkajs GROUP_JOIN: the consumer has its partitions and consumes. */
  onJoined(): void {
    this.generationCount++;
    this.joined = true;
    this.crash = undefined;
  }

  /** kafkajs CRASH: the consumer stopped; kafkajs (or the consumer service) restarts it. */
  onCrashed(error: string): void {
    this.generationCount++;
    this.joined = false;
    this.crash = { at: Date.now(), error };
  }

  onStopped(): void {
    this.joined = false;
  }

  failureStarted(partitionKey: string, dependency: Dependency, error: string): void {
    const current = this.failures.get(partitionKey);
    this.failures.set(partitionKey, { dependency, since: current?.since ?? Date.now(), error });
  }

  failureEnded(partitionKey: string): void {
    this.failures.delete(partitionKey);
  }

  onHeld(partitionKey: string, problem: string): void {
    this.held.set(partitionKey, problem);
  }

  onReleased(partitionKey: string): void {
    this.held.delete(partitionKey);
  }

  /** Partitions whose work is being retried now. */
  get retryingPartitions(): number {
    return this.failures.size;
  }

  /** Why Kafka consumption is not ready, or undefined when it is. */
  kafkaProblem(): string | undefined {
    if (this.crash) return `consumer crashed: ${this.crash.error}`;
    if (!this.joined) return 'consumer has not joined its group';
    if (this.held.size > 0) return [...this.held.values()].join('; ');
    return this.stalled('kafka');
  }

  /** Why applying to Postgres is not ready, or undefined when it is. */
  postgresProblem(): string | undefined {
    return this.stalled('postgres');
  }

  private stalled(dependency: Dependency): string | undefined {
    const now = Date.now();
    let oldest: Failure | undefined;
    for (const failure of this.failures.values()) {
      if (failure.dependency === dependency && (!oldest || failure.since < oldest.since)) oldest = failure;
    }
    if (!oldest || now - oldest.since <= this.stallAfterMs) return undefined;
    return `retrying a transient failure for ${Math.round((now - oldest.since) / 1000)} s: ${oldest.error}`;
  }
}
