import type { Logger } from './log.js';

/**
 * What start-up opened, to be closed in reverse: each resource's closer is pushed right after
 * the resource is made, so closing mirrors building without a hand-kept list, and a start that
 * fails half-way closes exactly what it had opened.
 */
export class Closers {
  private readonly stack: { what: string; close: () => unknown }[] = [];
  private closing?: Promise<void>;

  constructor(private readonly log: Logger) {}

  push(what: string, close: () => unknown): void {
    this.stack.push({ what, close });
  }

  /** Runs every closer, last pushed first; a failing one is logged and the rest still run. Once. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (let c = this.stack.pop(); c; c = this.stack.pop()) {
        try {
          await c.close();
        } catch (e) {
          this.log.error({ what: c.what, err: (e as Error).message }, 'closing failed');
        }
      }
    })();
    return this.closing;
  }
}
