import type { Logger } from '../util/log.js';
import { scrubSecrets } from '../util/log.js';
import type { NodeSpec } from './node-config.js';
import type { NodeState, NodeStatus } from './status.js';
import type { TailscaleStatus } from './tailscale-cli.js';

/**
 * A node's status as its supervisor keeps it: only the supervisor changes it, everybody else
 * gets copies (`onStatus` on every change, `current`).
 */
export class StatusBook {
  private readonly state: NodeStatus;

  constructor(
    spec: NodeSpec,
    tailscaledVersion: string | undefined,
    private readonly onStatus: (s: NodeStatus) => void,
    private readonly log: Logger,
  ) {
    this.state = {
      endpoint: spec.endpointId, network: spec.networkId, container: spec.containerId, containerName: spec.containerName,
      state: 'starting', since: new Date().toISOString(), hostname: spec.hostname, tailscaleIPs: [], tailscaledVersion, restarts: 0, crashLoop: false,
    };
  }

  get current(): NodeStatus {
    return { ...this.state };
  }

  /** A new state (fields of the last one that belong to it alone are cleared), told and logged. */
  set(state: NodeState, extra: Partial<NodeStatus> = {}): void {
    const changed = this.state.state !== state;
    Object.assign(this.state, { heldBy: undefined, nextAttemptAt: undefined, crashLoop: false }, extra, { state });
    if (changed) this.state.since = new Date().toISOString();
    if (extra.lastError) this.state.lastError = scrubSecrets(extra.lastError);
    this.onStatus({ ...this.state });
    const level = state === 'failed' || state === 'logged-out' ? 'error' : state === 'retrying' ? 'warn' : 'info';
    if (changed) this.log[level]({ state, err: this.state.lastError }, 'node state');
  }

  /** What tailscaled says of itself: its addresses, version and the tailnet's MagicDNS suffix. */
  note(st: TailscaleStatus): void {
    this.state.tailscaleIPs = st.Self?.TailscaleIPs ?? st.TailscaleIPs ?? [];
    const t = st.CurrentTailnet;
    this.state.magicDnsSuffix = t?.MagicDNSEnabled && t.MagicDNSSuffix ? t.MagicDNSSuffix : undefined;
    // Peers it exchanged traffic with lately; a peer with a current address is reached directly.
    const active = Object.values(st.Peer ?? {}).filter((p) => p.Active === true);
    this.state.peers = { direct: active.filter((p) => !!p.CurAddr).length, relayed: active.filter((p) => !p.CurAddr).length };
    if (st.Version) this.state.tailscaledVersion = st.Version;
  }

  /** Told again unchanged (a poll). */
  tell(): void {
    this.onStatus({ ...this.state });
  }

  restarted(): void {
    this.state.restarts++;
  }
}
