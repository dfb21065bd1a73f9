/**
 * A timer that runs `tick` every `everyMs` while there is work, never two ticks at once.
 * `tick` answers whether work remains; the timer stops itself when none does, and `kick()`
 * starts it again (and runs a tick at once).
 */
export class Poller {
  private timer?: NodeJS.Timeout;
  /** The tick under way, if any. */
  private running?: Promise<void>;

  constructor(
    private readonly everyMs: number,
    private readonly tick: () => Promise<boolean>,
    private readonly onError: (e: Error) => void,
  ) {}

  kick(): void {
    this.runOnce();
    this.timer ??= setInterval(() => this.runOnce(), this.everyMs);
  }

  /** No more ticks; resolves once the one under way (if any) has finished. */
  async stop(): Promise<void> {
    this.halt();
    await this.running;
  }

  private halt(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private runOnce(): void {
    this.running ??= this.tick().then(
      (more) => {
        if (!more) this.halt();
      },
      (e: Error) => this.onError(e),
    ).finally(() => (this.running = undefined));
  }
}
