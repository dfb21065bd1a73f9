/**
 * When to restart a crashed tailscaled: 100 ms doubling to 30 s, reset after 30 s of stable
 * running; five crashes within 30 s is a crash loop, which waits a cooldown before trying again.
 */
export interface RestartPolicyOptions {
  initialMs: number;
  maxMs: number;
  stableMs: number;
  loopCrashes: number;
  loopWindowMs: number;
  cooldownMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicyOptions = {
  initialMs: 100,
  maxMs: 30_000,
  stableMs: 30_000,
  loopCrashes: 5,
  loopWindowMs: 30_000,
  cooldownMs: 5 * 60_000,
};

export type RestartDecision = { kind: 'retry'; delayMs: number } | { kind: 'crash-loop'; delayMs: number; crashes: number };

export class RestartPolicy {
  private crashes: number[] = [];
  private nextDelay: number;

  constructor(private readonly o: RestartPolicyOptions = DEFAULT_RESTART_POLICY) {
    this.nextDelay = o.initialMs;
  }

  /** The process exited at `now` after starting at `startedAt`. */
  onExit(startedAt: number, now: number): RestartDecision {
    if (now - startedAt >= this.o.stableMs) this.nextDelay = this.o.initialMs;
    this.crashes = this.crashes.filter((t) => now - t < this.o.loopWindowMs);
    this.crashes.push(now);
    if (this.crashes.length >= this.o.loopCrashes) {
      const crashes = this.crashes.length;
      this.crashes = [];
      this.nextDelay = this.o.initialMs;
      return { kind: 'crash-loop', delayMs: this.o.cooldownMs, crashes };
    }
    const delayMs = this.nextDelay;
    this.nextDelay = Math.min(this.o.maxMs, this.nextDelay * 2);
    return { kind: 'retry', delayMs };
  }
}
