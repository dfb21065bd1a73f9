import { setTimeout as sleep } from 'node:timers/promises';

export interface WaitOptions {
  /** Give up after this long (the check has run at least once). */
  timeoutMs: number;
  /** Time between checks. */
  everyMs: number;
  /** Each wait doubles, up to this: for a check that costs a process, where early answers matter most. */
  maxEveryMs?: number;
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
  let every = opts.everyMs;
  for (;;) {
    if (opts.signal?.aborted) return undefined;
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() >= deadline) return undefined;
    await sleep(Math.min(every, Math.max(0, deadline - Date.now())));
    if (opts.maxEveryMs) every = Math.min(every * 2, opts.maxEveryMs);
  }
}
