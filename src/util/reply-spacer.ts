/**
 * Lets callers through one at a time, at least `gapMs` apart (0: at once). Used to space
 * replies, not work: callers do their work first and wait here only to answer.
 */
export class ReplySpacer {
  private last = 0;
  private queue: Promise<void> = Promise.resolve();

  constructor(private gapMs = 0) {}

  setGap(ms: number): void {
    this.gapMs = ms;
  }

  get gap(): number {
    return this.gapMs;
  }

  wait(): Promise<void> {
    if (this.gapMs <= 0) return Promise.resolve();
    const turn = this.queue.then(async () => {
      const due = this.last + this.gapMs - Date.now();
      if (due > 0) await new Promise((r) => setTimeout(r, due));
      this.last = Date.now();
    });
    this.queue = turn;
    return turn;
  }
}
