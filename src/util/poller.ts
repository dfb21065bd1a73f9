/**
 * A timer that runs `tick` every `everyMs` while there is work, never two ticks at once.
 * `tick` answers whether work remains; the timer stops itself when none does, and `kick()`
 * starts it again (and runs a tick at once).
 */
export class Poller {
  private timer?: NodeJS.Timeout;
  private running = false;

  constructor(
    private readonly everyMs: number,
    private readonly tick: () => Promise<boolean>,
    private readonly onError: (e: Error) => void,
  ) {}

  kick(): void {
    void this.runOnce();
    this.timer ??= setInterval(() => void this.runOnce(), this.everyMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async runOnce(): Promise<void> {
    if (this.running) return;
    this.running = true;
    let more = true;
    try {
      more = await this.tick();
    } catch (e) {
      this.onError(e as Error);
    } finally {
      this.running = false;
      if (!more) this.stop();
    }
  }
}
