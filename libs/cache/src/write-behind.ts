/**
 * Write-behind: the change goes to the cache (readers see it at once) and to a durable log (Kafka); the
 * database is updated later, from the log, by a consumer. The write is acknowledged only when the log has it.
 * - The cache update fails: the write goes on (the log is what makes it durable); the caller learns that the
 *   cache does not show it. A cache command that failed by timing out is not withdrawn, though: a server that
 *   was only slow (stalled, partitioned) still carries it out, possibly after the consumer's own update for this
 *   write, where it would stay stale. So once the log has the write, the update is undone as well, without
 *   waiting (best effort): sent after the update on the same connection, the undo is carried out after it.
 * - The log append fails: the cache change is undone, so readers never see a write that was not accepted,
 *   and the error propagates (the caller may fall back to write-through).
 */
export class WriteBehind<C, L> {
  constructor(private readonly hooks: { cacheError?: (error: unknown) => void } = {}) {}

  async write(steps: {
    updateCache: () => Promise<C>;
    appendToLog: () => Promise<L>;
    undoCache: () => Promise<void>;
  }): Promise<{ cache: C | undefined; log: L }> {
    let cache: C | undefined;
    let cached = false;
    try {
      cache = await steps.updateCache();
      cached = true;
    } catch (error) {
      this.hooks.cacheError?.(error);
    }
    let log: L;
    try {
      log = await steps.appendToLog();
    } catch (error) {
      if (cached) await steps.undoCache().catch((e: unknown) => this.hooks.cacheError?.(e));
      throw error;
    }
    if (!cached) void steps.undoCache().catch((e: unknown) => this.hooks.cacheError?.(e));
    return { cache, log };
  }
}
