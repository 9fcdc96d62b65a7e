import { Injectable } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { CounterRepository } from '@app/store';
import { CounterViewRepository, type PendingEntry } from './counter-view.repository.js';
import { CounterView } from './counter-view.service.js';

/** What a sweep found in one counter's pending deltas (and, with `repair`, took out). */
export interface PendingFinding {
  name: string;
  /** Ids Postgres has applied that are still pending: a reconcile was missed, and the view over-counts. */
  applied: string[];
  /**
   * Ids not applied, accepted before everything of the counter's partition that was accepted then is applied: they
   * never reached Kafka (an API killed between Redis and Kafka) or were dead-lettered, and will never be applied.
   */
  orphaned: string[];
}

/**
 * Heals the Redis view where the write path and the consumer's reconcile left it wrong: applied deltas still
 * pending (a reconcile that failed or was never sent: the base moves past them and the view over-counts for as long
 * as the base lives, for ever on a hot counter) and orphans (deltas that will never be applied). Only deltas older
 * than `minAgeMs` are looked at: the consumer reconciles younger ones right after applying them.
 *
 * An orphan is told apart from an event still waiting in Kafka by `appliedThrough`: the time before which every
 * event of the counter's partition is applied (from the consumer lag: the timestamp of the oldest event not applied,
 * or now when caught up). A pending delta accepted before it, less a margin, and not in the ledger, is not in Kafka.
 * The margin covers a send accepted before and landing after (a kafkajs request timeout, twice, and the API's produce
 * timeout): 63 s by default. Without a horizon (the lag not known), no delta is taken as an orphan.
 */
@Injectable()
export class ViewSweep {
  private readonly marginMs: number;

  constructor(
    private readonly repository: CounterViewRepository,
    private readonly view: CounterView,
    private readonly rows: CounterRepository,
    config: AppConfig,
  ) {
    this.marginMs = 2 * config.kafka.requestTimeoutMs + config.api.produce.timeoutMs;
  }

  /** The counters with pending deltas, a batch of names at a time. */
  withPending(): AsyncGenerator<string[]> {
    return this.repository.countersWithPending();
  }

  /**
   * Looks at the pending deltas of `names` (one Redis round trip for all of them, then one Postgres query per counter
   * that has deltas older than `minAgeMs`); with `repair`, takes the applied and orphaned ones out. `appliedThrough`
   * gives each counter's horizon (see above).
   */
  async check(
    names: string[],
    options: {
      now: number;
      minAgeMs: number;
      appliedThrough: (name: string) => number | undefined;
      repair: boolean;
    },
  ): Promise<PendingFinding[]> {
    const entries = await this.repository.pendingEntriesMany(names);
    const findings: PendingFinding[] = [];
    for (const [i, name] of names.entries()) {
      const old = (entries[i] ?? []).filter((p) => p.acceptedAt <= options.now - options.minAgeMs);
      if (old.length === 0) continue;
      const finding = await this.checkOne(name, old, options.appliedThrough(name), options.repair);
      if (finding) findings.push(finding);
    }
    return findings;
  }

  private async checkOne(
    name: string,
    old: PendingEntry[],
    appliedThrough: number | undefined,
    repair: boolean,
  ): Promise<PendingFinding | undefined> {
    const { state, appliedIds } = await this.rows.readWithApplied(
      name,
      old.map((p) => p.eventId),
    );
    const applied = new Set(appliedIds);
    const orphaned =
      appliedThrough === undefined
        ? []
        : old
            .filter((p) => !applied.has(p.eventId) && p.acceptedAt < appliedThrough - this.marginMs)
            .map((p) => p.eventId);
    if (appliedIds.length === 0 && orphaned.length === 0) return undefined;
    // The row was read with the ledger: it counts every applied id, so they leave pending together with a base that
    // includes them (the base only ever moves to a newer version).
    if (repair) await this.repository.reconcile(name, state, [...appliedIds, ...orphaned], this.view.baseTtl);
    return { name, applied: appliedIds, orphaned };
  }
}
