/**
 * A timer that runs `tick` every `everyMs` while there is work, never two ticks at once.
 * `tick` answers whether work remains; the timer stops itself when none does, and `kick()`
 * starts it again (and runs a tick at once).
 */
export class Poller {
  private timer?: NodeJS.Timeout;
  /** The tick under way, if any. */
  private running?: Promise<void>;
  /** Work was added since the tick under way began. */
  private kicked = false;
  private stopped = false;

  constructor(
    private readonly everyMs: number,
    private readonly tick: () => Promise<boolean>,
    private readonly onError: (e: Error) => void,
  ) {}

  kick(): void {
    // A kick during a tick that is about to say "no more work" must not be lost: the tick's
    // answer was made before this work existed, so it runs once more instead of stopping.
    if (this.stopped) return;
    this.kicked = true;
    this.timer ??= setInterval(() => this.runOnce(), this.everyMs);
    this.runOnce();
  }

  /** No more ticks; resolves once the one under way (if any) has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.halt();
    await this.running;
  }

  private halt(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private runOnce(): void {
    if (this.running || this.stopped) return;
    this.kicked = false;
    this.running = this.tick()
      .then(
        (more) => {
          if (!more && !this.kicked) this.halt();
        },
        (e: Error) => this.onError(e),
      )
      .finally(() => {
        this.running = undefined;
        if (this.kicked && this.timer) this.runOnce();
      });
  }
}
