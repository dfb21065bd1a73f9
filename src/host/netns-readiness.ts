import { mountPoints, resolveSandboxPath } from './netns.js';
import { Poller } from '../util/poller.js';

export interface ReadinessOptions {
  pollMs: number;
  /** After this long without a namespace, the watch ends with `onGiveUp` (the repair loop retries). */
  giveUpMs: number;
  mountPoints?: () => Promise<Set<string>>;
  onError: (e: Error) => void;
}

interface Watch {
  path: string;
  since: number;
  onReady: () => void;
  onGiveUp: () => void;
}

/**
 * Waits for network namespaces to exist. Docker 20.10 and 26.1 create a container's namespace
 * after Join (docker-facts.md §1); it exists once its bind mount shows in the mount table, so
 * one read of mountinfo per tick answers for every pending namespace.
 */
export class NetnsReadiness {
  private readonly watches = new Map<string, Watch>();
  private readonly poller: Poller;
  private readonly mounts: () => Promise<Set<string>>;

  constructor(private readonly opts: ReadinessOptions) {
    this.mounts = opts.mountPoints ?? (() => mountPoints());
    this.poller = new Poller(opts.pollMs, () => this.tick(), opts.onError);
  }

  /** Calls `onReady` once the namespace at `path` (as seen from this process) exists. Idempotent per id. */
  watch(id: string, path: string, onReady: () => void, onGiveUp: () => void): void {
    if (this.watches.has(id)) return;
    this.watches.set(id, { path, since: Date.now(), onReady, onGiveUp });
    this.poller.kick();
  }

  cancel(id: string): void {
    this.watches.delete(id);
  }

  async stop(): Promise<void> {
    await this.poller.stop();
    this.watches.clear();
  }

  private async tick(): Promise<boolean> {
    if (!this.watches.size) return false;
    const mounts = await this.mounts();
    for (const [id, w] of this.watches) {
      if (mounts.has(await resolveSandboxPath(w.path))) {
        this.watches.delete(id);
        w.onReady();
      } else if (Date.now() - w.since > this.opts.giveUpMs) {
        this.watches.delete(id);
        w.onGiveUp();
      }
    }
    return this.watches.size > 0;
  }
}
