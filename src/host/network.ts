import { ROUTE_PROTO, WIREGUARD_PORT } from '../config/tailnet.js';
import { readFile, writeFile } from 'node:fs/promises';
import { CommandError, mustRun, type Runner } from '../util/exec.js';
import { RwGate } from '../util/rw-gate.js';
import type { PortRange } from '../config/settings.js';
import type { PortForward } from './wireguard-ports.js';
import { CONTAINER_IF_PREFIX, HOST_IF_PREFIX, linkAlias, type EndpointHost, type NetworkHost } from './host-spec.js';

export const FILTER_CHAIN = 'TSLINK-FORWARD';
export const NAT_CHAIN = 'TSLINK-POSTROUTING';
/** nat: each container's WireGuard port, from the host's own addresses to the container. */
export const PORTS_CHAIN = 'TSLINK-PORTS';
/** The interfaces of Docker's bridge networks, by the names Docker gives them. */
const DOCKER_BRIDGES = ['docker0', 'br-+', 'docker_gwbridge'] as const;
/** Only packets from outside to the host's own addresses: never a container's own traffic. */
const PORTS_JUMP = ['-m', 'addrtype', '--dst-type', 'LOCAL', '!', '-i', `${HOST_IF_PREFIX}+`] as const;

export interface HostNetwork {
  /** Makes the veth pair, gateway address and host route for an endpoint; safe to repeat; undone when it fails midway. */
  setUpEndpoint(net: NetworkHost, ep: EndpointHost): Promise<void>;
  /** Removes the endpoints' links (their addresses and routes go with them), only those that carry their alias; one `ip` call. */
  tearDownEndpoints(eps: readonly EndpointHost[]): Promise<void>;
  /** Makes the filter and NAT rules match exactly this set of networks; none left removes all. */
  /**
   * Makes the rules those of `nets` (read when the change begins); none left removes all.
   * `only: 'add'` adds what is missing and removes nothing, `only: 'remove'` the reverse: one of
   * each may run at once, so a new network's rule never queues behind the slow removal of others.
   */
  syncRules(nets: readonly NetworkHost[] | (() => readonly NetworkHost[]), opts?: { only?: 'add' | 'remove' }): Promise<void>;
  /**
   * Makes the host's WireGuard port forwards exactly these (one chain, rewritten whole in one
   * iptables-restore, so a repeat is harmless and a forward no endpoint holds any more is gone).
   * `checkJump`: check our jump is still there even when this process put it there (repair).
   */
  /**
   * Makes the WireGuard port forwards these. `keep`: tslink still has networks here, so the chain
   * and its jump stay when empty (a host alternating between 0 and 1 container would otherwise
   * make and remove them each time); without networks both go.
   */
  syncPortForwards(forwards: readonly PortForward[], opts?: { checkJump?: boolean; keep?: boolean }): Promise<void>;
  /** Removes tslink links and routes that belong to none of these endpoints. */
  sweep(live: readonly EndpointHost[]): Promise<{ removedLinks: string[]; removedRoutes: string[] }>;
  /** Lists tslink's links present now. */
  listLinks(): Promise<string[]>;
}

interface IpLink {
  ifname: string;
  ifalias?: string;
}
interface IpRoute {
  dst: string;
  dev?: string;
  protocol?: string | number;
}

/** iproute2 and iptables(-nft) behind the HostNetwork interface. */
export class IprouteHostNetwork implements HostNetwork {
  constructor(
    private readonly run: Runner,
    /** Each container's own tailscaled port comes from here (wireguard-ports.ts); 41641 always passes. */
    private readonly wireguardPorts: PortRange | undefined = undefined,
    private readonly writeSysctl: (path: string, value: string) => Promise<void> = (p, v) => writeFile(p, v),
    private readonly readSysctl: (path: string) => Promise<string> = (p) => readFile(p, 'utf8'),
  ) {}

  async setUpEndpoint(net: NetworkHost, ep: EndpointHost): Promise<void> {
    // One `ip` process for the whole endpoint (Join waits on it). -force carries on past a
    // failing line; the only failure allowed is the link existing already (a repeated Join,
    // or the start-up reconciler restoring an endpoint), everything else after it is idempotent.
    // The gateway address sits on every host-side veth of the network (as in CNI's ptp plugin):
    // the container resolves its gateway on its own link, and the host routes each /32.
    // Every value here is a checked type (host-spec.ts, ipv4.ts): none can hold a space or newline.
    const batch = [
      `link add ${ep.hostIf} mtu ${net.mtu} type veth peer name ${ep.containerIf} mtu ${net.mtu}`,
      `link set dev ${ep.hostIf} alias ${linkAlias(ep)}`,
      `address replace ${net.gateway}/32 dev ${ep.hostIf}`,
      `link set dev ${ep.hostIf} up`,
      `route replace ${ep.address}/32 dev ${ep.hostIf} proto ${ROUTE_PROTO} scope link`,
    ];
    const r = await this.run('ip', ['-force', '-batch', '-'], { input: batch.join('\n') + '\n' });
    if (r.code === 0) return;
    const problems = r.stderr
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !/File exists/.test(l) && !/^Command failed -:1$/.test(l));
    if (!problems.length) return;
    // Half a setup is worse than none: remove what this call made before failing.
    await this.tearDownEndpoints([ep]).catch(() => undefined);
    throw new CommandError('ip', ['-force', '-batch', '-'], { ...r, stderr: problems.join('\n') });
  }

  async tearDownEndpoints(eps: readonly EndpointHost[]): Promise<void> {
    if (!eps.length) return;
    const links = new Map((await this.links()).map((l) => [l.ifname, l]));
    const mine = eps.filter((ep) => {
      const l = links.get(ep.hostIf);
      // An older tslink wrote tslink:<network 12>:<endpoint 12>; a link made halfway has no alias yet.
      return l && (l.ifalias === undefined || l.ifalias === linkAlias(ep) || l.ifalias.endsWith(`:${ep.id.slice(0, 12)}`));
    });
    await this.batch(mine.map((ep) => `link del dev ${ep.hostIf}`));
  }

  private async links(): Promise<IpLink[]> {
    const r = await mustRun(this.run, 'ip', ['-json', 'link', 'show']);
    return (JSON.parse(r.stdout || '[]') as IpLink[]).filter((l) => l.ifname.startsWith(HOST_IF_PREFIX) || l.ifname.startsWith(CONTAINER_IF_PREFIX));
  }

  /** Runs many `ip` lines in one process; lines about objects already gone are not errors. */
  private async batch(lines: readonly string[]): Promise<void> {
    if (!lines.length) return;
    const r = await this.run('ip', ['-force', '-batch', '-'], { input: lines.join('\n') + '\n' });
    if (r.code === 0) return;
    const problems = r.stderr.split('\n').map((l) => l.trim()).filter((l) => l && !/^Command failed -:\d+$/.test(l) && !/Cannot find device|does not exist|No such (device|process)/i.test(l));
    if (problems.length) throw new CommandError('ip', ['-force', '-batch', '-'], { ...r, stderr: problems.join('\n') });
  }

  async listLinks(): Promise<string[]> {
    return (await this.links()).map((l) => l.ifname);
  }

  async sweep(live: readonly EndpointHost[]): Promise<{ removedLinks: string[]; removedRoutes: string[] }> {
    const keep = new Set<string>(live.flatMap((e) => [e.hostIf, e.containerIf]));
    const removedLinks = (await this.listLinks()).filter((name) => !keep.has(name));
    // Deleting one end of a pair removes the other: its line then finds nothing, which is fine.
    await this.batch(removedLinks.map((name) => `link del dev ${name}`));
    const keepRoutes = new Set(live.map((e) => `${e.address}`));
    const r = await mustRun(this.run, 'ip', ['-json', 'route', 'show', 'proto', String(ROUTE_PROTO)]);
    const removedRoutes = (JSON.parse(r.stdout || '[]') as IpRoute[]).map((route) => route.dst).filter((dst) => !keepRoutes.has(dst) && /^[0-9./]+$/.test(dst));
    await this.batch(removedRoutes.map((dst) => `route del ${dst} proto ${ROUTE_PROTO}`));
    return { removedLinks, removedRoutes };
  }

  /**
   * The NAT rules this process knows to be in place, by rule text; undefined until a full sync
   * wrote them (at start, or after a failure), so drift is repaired by the next full one.
   */
  private applied?: Set<string>;
  /** Rules an iptables-restore under way adds or deletes: no second one touches them. */
  private readonly changing = new Set<string>();
  private readonly rulesGate = new RwGate();

  async syncRules(nets: readonly NetworkHost[] | (() => readonly NetworkHost[]), opts: { only?: 'add' | 'remove' } = {}): Promise<void> {
    const read = (): readonly NetworkHost[] => (typeof nets === 'function' ? nets() : nets);
    const only = opts.only;
    // After the first whole write, a change adds or deletes its own rules in one iptables-restore.
    // Deleting waits for the kernel (≈ 16 ms with nf_tables, far more under load; adding ≈ 2 ms),
    // so additions and deletions run side by side; a whole rewrite runs alone.
    const done = this.applied && (await this.rulesGate.shared(async () => {
      const applied = this.applied;
      const list = read();
      if (!applied || (list.length === 0 && only !== 'add')) return false;
      const wanted = this.natRules(list);
      const add = only === 'remove' ? [] : [...wanted].filter((r) => !applied.has(r) && !this.changing.has(r));
      const del = only === 'add' ? [] : [...applied].filter((r) => !wanted.has(r) && !this.changing.has(r));
      if (!add.length && !del.length) return true;
      const lines = ['*nat', ...del.map((r) => `-D ${NAT_CHAIN} ${r}`), ...add.map((r) => `-A ${NAT_CHAIN} ${r}`), 'COMMIT'];
      [...add, ...del].forEach((r) => this.changing.add(r));
      try {
        const r = await this.run('iptables-restore', ['-w', '--noflush'], { input: lines.join('\n') + '\n' });
        if (r.code !== 0) {
          this.applied = undefined; // someone changed our chain: rewrite it whole below
          return false;
        }
        add.forEach((x) => this.applied?.add(x));
        del.forEach((x) => this.applied?.delete(x));
        return true;
      } finally {
        [...add, ...del].forEach((r) => this.changing.delete(r));
      }
    }));
    if (done) return;
    await this.rulesGate.alone(async () => {
      const list = read();
      if (list.length === 0) {
        if (only === 'add') return;
        this.applied = undefined;
        await this.removeRules();
        return;
      }
      const wanted = this.natRules(list);
      await this.writeAllRules(wanted);
      this.applied = wanted;
    });
  }

  private natRules(nets: readonly NetworkHost[]): Set<string> {
    return new Set(nets.map((n) => this.natRule(n)));
  }

  private natRule(n: NetworkHost): string {
    return `-s ${n.subnet} ! -o ${HOST_IF_PREFIX}+ -m comment --comment tslink:${n.id.slice(0, 12)} -j MASQUERADE`;
  }

  private async writeAllRules(natRules: ReadonlySet<string>): Promise<void> {
    await this.enableForwarding();
    const tsh = `${HOST_IF_PREFIX}+`;
    // Declaring a chain in iptables-restore flushes it, so a full sync rewrites our chains whole
    // and atomically per table; nothing else in the tables is touched (--noflush).
    const filter = [
      '*filter',
      `:${FILTER_CHAIN} - [0:0]`,
      `-A ${FILTER_CHAIN} -i ${tsh} -o ${tsh} -p udp -m multiport --dports ${this.wireguardDports()} -j ACCEPT`,
      `-A ${FILTER_CHAIN} -i ${tsh} -o ${tsh} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT`,
      `-A ${FILTER_CHAIN} -i ${tsh} -o ${tsh} -j DROP`,
      // Docker's bridges are Docker's to guard (an --internal network above all): a container of
      // ours reaches one only through a port the host publishes (DNAT), never by its addresses.
      ...DOCKER_BRIDGES.map((br) => `-A ${FILTER_CHAIN} -i ${tsh} -o ${br} -m conntrack ! --ctstate DNAT -j DROP`),
      `-A ${FILTER_CHAIN} -i ${tsh} -j ACCEPT`,
      `-A ${FILTER_CHAIN} -o ${tsh} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT`,
      // A peer's first packet to a container's own port, forwarded by PORTS_CHAIN (and only by it:
      // nothing else DNATs to our links).
      ...(this.wireguardPorts ? [`-A ${FILTER_CHAIN} -o ${tsh} -p udp -m conntrack --ctstate DNAT -m multiport --dports ${this.wireguardPorts.first}:${this.wireguardPorts.last} -j ACCEPT`] : []),
      `-A ${FILTER_CHAIN} -o ${tsh} -j DROP`,
      'COMMIT',
    ];
    const nat = ['*nat', `:${NAT_CHAIN} - [0:0]`, ...[...natRules].map((r) => `-A ${NAT_CHAIN} ${r}`), 'COMMIT'];
    await mustRun(this.run, 'iptables-restore', ['-w', '--noflush'], { input: [...filter, ...nat].join('\n') + '\n' });
    await this.ensureJump('filter', 'FORWARD', FILTER_CHAIN);
    await this.ensureJump('nat', 'POSTROUTING', NAT_CHAIN);
  }

  /** Port-forward syncs run one after another: each rewrites the chain whole. */
  private portsQueue: Promise<unknown> = Promise.resolve();
  /** Whether our PREROUTING jump to PORTS_CHAIN is known to be there (true), known gone (false), or unknown. */
  private portsJump: boolean | undefined;

  syncPortForwards(forwards: readonly PortForward[], opts: { checkJump?: boolean; keep?: boolean } = {}): Promise<void> {
    const run = this.portsQueue.then(() => this.writePortForwards(forwards, opts.checkJump === true, opts.keep === true));
    this.portsQueue = run.catch(() => undefined);
    return run;
  }

  /**
   * One iptables-restore per change (Join and Leave each cause one): the jump is checked only
   * when its state is unknown or a repair pass asks, and removed once when the last network goes.
   */
  private async writePortForwards(forwards: readonly PortForward[], checkJump: boolean, keep: boolean): Promise<void> {
    // None wanted and no network left: no chain and no jump, so a host without tslink networks holds nothing of ours.
    if (!this.wireguardPorts || (!forwards.length && !keep)) {
      if (this.portsJump === false && !checkJump) return;
      await this.removeChain('nat', 'PREROUTING', PORTS_CHAIN, PORTS_JUMP);
      this.portsJump = false;
      return;
    }
    // Every value is a checked type (an Ipv4Address, a port of the range): no text reaches iptables.
    const lines = ['*nat', `:${PORTS_CHAIN} - [0:0]`, ...forwards.map((f) => `-A ${PORTS_CHAIN} -p udp --dport ${f.port} -j DNAT --to-destination ${f.address}:${f.port}`), 'COMMIT'];
    await mustRun(this.run, 'iptables-restore', ['-w', '--noflush'], { input: lines.join('\n') + '\n' });
    if (this.portsJump === true && !checkJump) return;
    this.portsJump = undefined;
    await this.ensureJump('nat', 'PREROUTING', PORTS_CHAIN, PORTS_JUMP);
    this.portsJump = true;
  }

  /** WireGuard between containers of this host: the shared port and the containers' own. */
  private wireguardDports(): string {
    const r = this.wireguardPorts;
    return r ? `${WIREGUARD_PORT},${r.first}:${r.last}` : String(WIREGUARD_PORT);
  }

  /**
   * Docker turns forwarding on at start; a managed plugin cannot write /proc/sys (read-only), so
   * only write when it is off, and say what to do if that fails.
   */
  private async enableForwarding(): Promise<void> {
    if ((await this.readSysctl('/proc/sys/net/ipv4/ip_forward')).trim() === '1') return;
    try {
      await this.writeSysctl('/proc/sys/net/ipv4/ip_forward', '1');
    } catch (e) {
      throw new Error(`IP forwarding is off on the host and the plugin cannot turn it on (${(e as Error).message}); run: sysctl -w net.ipv4.ip_forward=1`);
    }
  }

  /** Our jump goes first: Docker sets FORWARD's policy to DROP and adds its own chains. */
  private async ensureJump(table: string, from: string, to: string, match: readonly string[] = []): Promise<void> {
    const check = await this.run('iptables', ['-w', '-t', table, '-C', from, ...match, '-j', to]);
    if (check.code === 0) return;
    await mustRun(this.run, 'iptables', ['-w', '-t', table, '-I', from, '1', ...match, '-j', to]);
  }

  private async removeRules(): Promise<void> {
    await this.removeChain('filter', 'FORWARD', FILTER_CHAIN);
    await this.removeChain('nat', 'POSTROUTING', NAT_CHAIN);
  }

  private async removeChain(table: string, from: string, chain: string, match: readonly string[] = []): Promise<void> {
    // Remove every copy of the jump (a crash between check and insert could leave two).
    while ((await this.run('iptables', ['-w', '-t', table, '-D', from, ...match, '-j', chain])).code === 0) {
      /* keep deleting */
    }
    await this.run('iptables', ['-w', '-t', table, '-F', chain]);
    await this.run('iptables', ['-w', '-t', table, '-X', chain]);
  }
}
