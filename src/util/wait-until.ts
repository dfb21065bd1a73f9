import { setTimeout as sleep } from 'node:timers/promises';

export interface WaitOptions {
  /** Give up after this long (the check has run at least once). */
  timeoutMs: number;
  /** Time between checks. */
  everyMs: number;
  /** Stops the wait early (a Leave, a shutdown). */
  signal?: AbortSignal;
}

/**
 * Checks `check` until it answers a value (returned), the time is up or the signal aborts (both
 * undefined). The one polling loop tslink has: a condition the kernel or a daemon offers no event
 * for (a process exit, a socket that starts to answer, a netmap) is polled with a bound.
 */
export async function waitUntil<T>(check: () => Promise<T | undefined | false> | T | undefined | false, opts: WaitOptions): Promise<T | undefined> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    if (opts.signal?.aborted) return undefined;
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() >= deadline) return undefined;
    await sleep(Math.min(opts.everyMs, Math.max(0, deadline - Date.now())));
  }
}
