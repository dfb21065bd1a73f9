import { syncContainerNat, type ContainerNat, type PeerRoute } from '../host/container-nat.js';
import { parseDnsSuffix } from '../host/dns-name.js';
import { parseIpv4 } from '../host/ipv4.js';
import { localSandboxPath, type NetnsPath } from '../host/netns.js';
import type { StateStore } from '../state/store.js';
import type { PortRange } from '../config/settings.js';
import { coalesce } from '../util/coalesce.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Runner } from '../util/exec.js';
import type { Logger } from '../util/log.js';
import { shortId } from '../util/short-id.js';
import { nodeSpec } from './node-config.js';
import type { NodeStatus } from './status.js';

/** How long a change waits for others before the network's rules are written. */
const NAMES_SETTLE_MS = 300;

interface Member {
  endpoint: string;
  netns: NetnsPath;
  peer?: PeerRoute;
  nat: Omit<ContainerNat, 'peers'>;
}

/**
 * Names inside every tslink container (issue 24): its tailnet's MagicDNS names resolve through
 * its own node, and a Docker name of a peer on the same network (a Compose service) reaches that
 * peer over the tailnet. Kept from the nodes' statuses: a node that gets its address, or leaves,
 * changes the rules of every container on its network on this host.
 */
export class ContainerNames {
  private readonly latest = new Map<string, NodeStatus>();
  /** What each container's rules say now (JSON of its ContainerNat). */
  private readonly applied = new Map<string, string>();
  /** Containers whose route_localnet is on (written with their first MagicDNS rule). */
  private readonly localnet = new Set<string>();
  /** Containers this process has written rules into (or tried to): no longer fresh. */
  private readonly touched = new Set<string>();
  private readonly syncs = new Map<string, () => Promise<void>>();
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly store: StateStore,
    private readonly run: Runner,
    private readonly hostDockerRun: string | undefined,
    private readonly log: Logger,
    /**
     * Whether Docker joined the endpoint while this process ran: its namespace then holds no rules
     * of ours until this writes some, and the first write needs no read.
     */
    private readonly joinedHere: (endpoint: string) => boolean,
    private readonly wireguardPorts?: PortRange,
    private readonly settleMs = NAMES_SETTLE_MS,
  ) {}

  /** A node's status changed: its network's rules follow when its address, suffix or presence did. */
  observe(next: NodeStatus): void {
    const prev = this.latest.get(next.endpoint);
    if (next.state === 'stopped') {
      this.latest.delete(next.endpoint);
      this.applied.delete(next.endpoint);
      this.localnet.delete(next.endpoint);
    } else this.latest.set(next.endpoint, next);
    const key = (s?: NodeStatus): string => (s && s.state !== 'stopped' ? `${s.tailscaleIPs.join(',')}|${s.magicDnsSuffix ?? ''}` : '');
    if (key(prev) !== key(next)) this.schedule(next.network);
  }

  /** A repair pass: every container's jumps are put back first where something moved them. */
  repair(): Promise<void> {
    const nets = new Set([...this.latest.values()].map((s) => s.network));
    return Promise.all([...nets].map((n) => this.sync(n, false))).then(() => undefined);
  }

  /** Rule writes under way (shutdown waits for them). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }

  private schedule(network: string): void {
    let run = this.syncs.get(network);
    // Every node of a burst changes every container's rules: waiting a moment first makes a
    // burst of N nodes cost a few passes over the network instead of N (each is N commands).
    if (!run) this.syncs.set(network, (run = coalesce(() => sleep(this.settleMs).then(() => this.sync(network, true)))));
    const p = run()
      .catch((e: Error) => this.log.error({ network: shortId(network), err: e.message }, 'container name rules failed'))
      .finally(() => this.running.delete(p));
    this.running.add(p);
  }

  private isFresh(endpoint: string): boolean {
    return !this.touched.has(endpoint) && this.joinedHere(endpoint);
  }

  private members(network: string): Member[] {
    const net = this.store.networks.get(network);
    if (!net) return [];
    return [...this.latest.values()].filter((s) => s.network === network).flatMap((s) => {
      const ep = this.store.endpoints.get(s.endpoint);
      const spec = ep && nodeSpec(ep, net);
      if (!ep || !spec) return [];
      const docker = parseIpv4(ep.address);
      const tailnet = s.tailscaleIPs.map(parseIpv4).find((a) => a !== undefined);
      const magicDns = spec.magicDns && s.magicDnsSuffix ? parseDnsSuffix(s.magicDnsSuffix) : undefined;
      return [{ endpoint: s.endpoint, netns: localSandboxPath(spec.sandboxKey, this.hostDockerRun), peer: docker && tailnet ? { docker, tailnet } : undefined, nat: { magicDns, wireguardPort: spec.wireguardPort, wireguardPorts: this.wireguardPorts } }];
    });
  }

  private async sync(network: string, rewrite: boolean): Promise<void> {
    for (const id of this.touched) if (!this.store.endpoints.has(id)) this.touched.delete(id);
    const members = this.members(network);
    for (const m of members) {
      const nat: ContainerNat = { ...m.nat, peers: members.flatMap((p) => (p !== m && p.peer ? [p.peer] : [])) };
      const text = JSON.stringify(nat);
      const prev = this.applied.get(m.endpoint);
      if (rewrite && prev === text) continue;
      // A new namespace with nothing to redirect yet (no MagicDNS suffix, no peer) would get
      // rules that only RETURN: its first write waits for its first name, one process less per
      // node. A namespace found at a restart may hold old peers' rules, and is always written.
      if (prev === undefined && !nat.magicDns && nat.peers.length === 0 && this.isFresh(m.endpoint)) continue;
      // Once written, a change rewrites our chains only; MagicDNS arriving later brings its
      // route_localnet along in the same command.
      const mode = !rewrite && prev === text ? 'repair' : prev !== undefined ? 'chains' : this.isFresh(m.endpoint) ? 'fresh' : 'write';
      const localnet = nat.magicDns !== undefined && !this.localnet.has(m.endpoint);
      this.touched.add(m.endpoint);
      try {
        const wrote = await syncContainerNat(this.run, m.netns, nat, mode, localnet);
        this.applied.set(m.endpoint, text);
        if (localnet) this.localnet.add(m.endpoint);
        if (wrote && mode === 'repair') this.log.info({ endpoint: shortId(m.endpoint) }, 'container name rules put back in front');
      } catch (e) {
        // The container went meanwhile, or its namespace refused: the next change or repair tries again.
        this.applied.delete(m.endpoint);
        this.log.debug({ endpoint: shortId(m.endpoint), err: (e as Error).message }, 'container name rules not written');
      }
    }
  }
}
