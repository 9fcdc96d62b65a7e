import type { ITask } from 'pg-promise';

/** A pg-promise task or transaction: repositories write only inside one their caller opened. */
export type Tx = ITask<object>;

/** Who applied an event: the Kafka consumer, or the API's synchronous write-through fallback. */
export type ApplySource = 'consumer' | 'write-through';

export interface CounterIncrement {
  eventId: string;
  name: string;
  by: number;
}

/** A counter's row after a change: `version` grows by one per transaction that touched it. */
export interface CounterState {
  name: string;
  value: number;
  version: number;
}

export interface ActivityRecord {
  id: string;
  actor: string;
  verb: string;
  object: string;
  /** ISO 8601 */
  occurredAt: string;
  data: Record<string, unknown> | null;
  /** Epoch ms at which the API accepted it. */
  acceptedAt: number;
}

export interface ApplyCountersResult {
  /** Counters changed by this call, with their new (value, version). */
  changed: CounterState[];
  /** Event ids that were applied now (the others were already in the ledger). */
  appliedIds: string[];
  duplicateIds: string[];
}
