import type { FaultKind } from './faults.js';

/**
 * The fault kinds under which a served value may differ from the acknowledged writes for a while: read-your-writes
 * is promised only while Redis is up (a stop, a flush or a stall loses or delays pending deltas), and a read during a
 * Postgres outage may be refused (503) or served from a view that Postgres could not refill.
 */
const VIEW_FAULTS: readonly FaultKind[] = [
  'redis-stop',
  'redis-flush',
  'redis-freeze',
  'postgres-stop',
  'postgres-freeze',
];

/**
 * How long after every app is ready again a view fault still excuses a difference. The view sweep runs every 5 s on
 * deltas older than 5 s (system.ts), so an over-count a missed reconcile left is gone within about 10 s; an
 * under-count (pending deltas a flush or a restart lost) lasts until the consumer has applied those events, seconds
 * once Postgres is back.
 */
const VIEW_FAULT_GRACE_MS = 15_000;

interface Window {
  kinds: readonly FaultKind[];
  from: number;
  /** When every app was ready again; Infinity while the episode lasts. */
  to: number;
}

/** The episodes with view faults, as they happen: the probes ask whether a check overlapped one. */
export class FaultWindows {
  private readonly windows: Window[] = [];

  constructor(private readonly graceMs = VIEW_FAULT_GRACE_MS) {}

  /** An episode with these faults begins now; call the result once every app is ready again. */
  open(kinds: readonly FaultKind[]): (readyAt: number) => void {
    const window: Window = { kinds: kinds.filter((k) => VIEW_FAULTS.includes(k)), from: Date.now(), to: Infinity };
    if (window.kinds.length === 0) return () => undefined;
    this.windows.push(window);
    return (readyAt) => {
      window.to = readyAt;
    };
  }

  /** The view faults active (or healed less than the grace before) at some time in [from, to]; empty if none. */
  during(from: number, to: number): FaultKind[] {
    return this.windows.filter((w) => w.from <= to && w.to + this.graceMs >= from).flatMap((w) => w.kinds);
  }

  /** When the last view fault's grace ended before `at` (for a violation's message); undefined if none did. */
  lastEnd(at: number): number | undefined {
    const ends = this.windows.map((w) => w.to + this.graceMs).filter((end) => end < at);
    return ends.length > 0 ? Math.max(...ends) : undefined;
  }
}
