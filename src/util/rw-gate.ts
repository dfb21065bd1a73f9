/**
 * Lets work that may overlap run side by side, and work that must not overlap anything run
 * alone: `alone` waits for the shared work under way, and holds back new shared work until it
 * is done. Neither may be entered from inside the other (an upgrade would wait for itself).
 */
export class RwGate {
  private sharedRunning = 0;
  private exclusive?: Promise<void>;
  private drained?: () => void;

  async shared<T>(fn: () => Promise<T>): Promise<T> {
    while (this.exclusive) await this.exclusive;
    this.sharedRunning++;
    try {
      return await fn();
    } finally {
      if (--this.sharedRunning === 0) this.drained?.();
    }
  }

  async alone<T>(fn: () => Promise<T>): Promise<T> {
    while (this.exclusive) await this.exclusive;
    let release!: () => void;
    this.exclusive = new Promise<void>((r) => (release = r));
    try {
      if (this.sharedRunning) await new Promise<void>((r) => (this.drained = r));
      this.drained = undefined;
      return await fn();
    } finally {
      this.exclusive = undefined;
      release();
    }
  }
}
