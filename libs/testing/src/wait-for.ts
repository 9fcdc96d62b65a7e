import { setTimeout as sleep } from 'node:timers/promises';

export interface WaitOptions {
  /** Give up after this long; the last error or value is in the message. Default 30 s. */
  timeoutMs?: number;
  intervalMs?: number;
  description?: string;
}

/**
 * Polls `probe` until it returns a value other than undefined/false without throwing, and returns that value.
 * For conditions on the real services, where there is nothing to subscribe to.
 */
export async function waitFor<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  options: WaitOptions = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out waiting for ${options.description ?? 'condition'} (last: ${detail})`);
    }
    await sleep(options.intervalMs ?? 100);
  }
}
