import type { PortRange } from '../config/settings.js';
import { coalesce } from '../util/coalesce.js';
import type { Logger } from '../util/log.js';
import type { HostNetwork } from './network.js';
import { portForwards } from './wireguard-ports.js';

/**
 * Keeps the host's WireGuard port forwards in line with the joined endpoints. Join, Leave, the
 * last network's deletion and every repair pass call `sync`; a burst of them costs one or two
 * rewrites. A failure is logged,
 * not thrown: the node still works, relayed, until the next pass.
 */
export class PortForwarder {
  private readonly write: () => Promise<void>;
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly host: HostNetwork,
    private readonly endpoints: () => Iterable<{ address: string; wireguardPort?: number; joinedAt?: string }>,
    private readonly range: PortRange | undefined,
    /** Whether tslink has any network here: the (maybe empty) chain stays while it does. */
    private readonly hasNetworks: () => boolean,
    private readonly log: Logger,
  ) {
    this.write = coalesce(() => host.syncPortForwards(portForwards(range, endpoints()), { keep: hasNetworks() }));
  }

  async sync(): Promise<void> {
    if (!this.range) return;
    await this.write().catch((e: Error) => this.warn(e));
  }

  /**
   * `sync` once the current reply has gone out (Join's): the rewrite starts with the fork of
   * `iptables-restore`, which blocks the event loop ≈ 2 ms and was measured in every Join.
   */
  syncSoon(): void {
    if (!this.range) return;
    const p: Promise<void> = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.sync())
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  /** The deferred syncs still running (shutdown waits for them). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }

  /** A repair pass: the same, and our jump checked even where this process made it. */
  async repair(): Promise<void> {
    if (!this.range) return;
    await this.host.syncPortForwards(portForwards(this.range, this.endpoints()), { checkJump: true, keep: this.hasNetworks() }).catch((e: Error) => this.warn(e));
  }

  private warn(e: Error): void {
    this.log.warn({ err: e.message }, 'WireGuard port forwards not updated: peers behind other NATs may be relayed until the next repair pass');
  }
}
