import type { Logger } from './log.js';

/**
 * Every piece of work started outside a request (event handling, node starts, drains, repairs)
 * runs through here: its failure is caught and logged with its name, never an unhandled
 * rejection, and `close()` waits for what is still running, up to a deadline.
 */
export class TaskTracker {
  private readonly running = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly log: Logger) {}

  /** Starts `fn` now (unless closing) and tracks it until it settles. */
  run(name: string, fn: () => Promise<unknown>, fields: Record<string, unknown> = {}): void {
    if (this.closed) return;
    const p: Promise<void> = Promise.resolve()
      .then(fn)
      .then(
        () => undefined,
        (e: unknown) => this.log.error({ task: name, ...fields, err: e instanceof Error ? e.message : String(e) }, `${name} failed`),
      )
      .finally(() => this.running.delete(p));
    this.running.add(p);
  }

  get size(): number {
    return this.running.size;
  }

  /** Refuses new work and waits for the running work, at most `deadlineMs`. Answers how many were left. */
  async close(deadlineMs: number): Promise<number> {
    this.closed = true;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((r) => (timer = setTimeout(r, deadlineMs)));
    await Promise.race([Promise.allSettled([...this.running]), deadline]);
    clearTimeout(timer);
    return this.running.size;
  }
}
