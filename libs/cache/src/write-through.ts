/**
 * Write-through: the database first, then the cache, in that order, so the cache never shows a value the
 * database does not have.
 * - The database write fails: the error propagates and the cache is not touched.
 * - The cache update fails after the database committed: the write stands (it is durable), the failure is
 *   reported, and `onCacheFailure` (default: nothing) may drop the stale entry. The caller gets the result.
 */
export class WriteThrough<R> {
  constructor(
    private readonly hooks: {
      onCacheFailure?: (error: unknown, result: R) => Promise<void>;
      cacheError?: (error: unknown) => void;
    } = {},
  ) {}

  async write(writeDatabase: () => Promise<R>, updateCache: (result: R) => Promise<void>): Promise<R> {
    const result = await writeDatabase();
    try {
      await updateCache(result);
    } catch (error) {
      this.hooks.cacheError?.(error);
      await this.hooks.onCacheFailure?.(error, result).catch((e: unknown) => this.hooks.cacheError?.(e));
    }
    return result;
  }
}
