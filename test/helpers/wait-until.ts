// Bounded polling: tests wait for a condition, never for a fixed time (two noisy cores).

export interface WaitOptions {
  /** Give up after this long; generous, since the machine's speed varies by 2× within minutes. */
  readonly timeoutMs: number;
  readonly intervalMs?: number;
}

/** Resolves with the first truthy value of `check`; rejects naming `what` at the deadline. */
export async function waitUntil<T>(
  what: string,
  check: () => T | Promise<T>,
  { timeoutMs, intervalMs = 50 }: WaitOptions,
): Promise<NonNullable<T>> {
  // A monotonic clock: the wall clock here can jump by seconds.
  const giveUpAt = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (performance.now() >= giveUpAt) {
      const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
    }
    await sleep(intervalMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
