import { ROUTE_PROTO, WIREGUARD_PORT } from '../config/tailnet.js';
import { readFile, writeFile } from 'node:fs/promises';
import { CommandError, mustRun, type Runner } from '../util/exec.js';
import type { EndpointRecord, NetworkRecord } from '../state/store.js';

/** Every host-side link tslink makes starts with this; `tsh+` matches them all in iptables. */
export const HOST_IF_PREFIX = 'tsh';
export const CONTAINER_IF_PREFIX = 'tsc';
/** Routes tslink adds carry this protocol number, so a sweep can find them without names. */
export const FILTER_CHAIN = 'TSLINK-FORWARD';
export const NAT_CHAIN = 'TSLINK-POSTROUTING';

/** Interface names are limited to 15 bytes; 12 hex of a 64-hex ID do not collide in practice. */
export function linkNames(endpointId: string): { hostIf: string; containerIf: string } {
  const short = endpointId.slice(0, 12);
  return { hostIf: `${HOST_IF_PREFIX}${short}`, containerIf: `${CONTAINER_IF_PREFIX}${short}` };
}

export interface HostNetwork {
  /** Makes the veth pair, gateway address and host route for an endpoint; safe to repeat. */
  setUpEndpoint(net: NetworkRecord, ep: EndpointRecord): Promise<void>;
  /** Removes the endpoint's links (their addresses and routes go with them); safe to repeat. */
  tearDownEndpoint(ep: EndpointRecord): Promise<void>;
  /** Makes the filter and NAT rules match exactly this set of networks; none left removes all. */
  syncRules(nets: readonly NetworkRecord[]): Promise<void>;
  /** Removes tslink links and routes that belong to none of these endpoints. */
  sweep(live: readonly EndpointRecord[]): Promise<{ removedLinks: string[]; removedRoutes: string[] }>;
  /** Lists tslink's host-side links present now. */
  listLinks(): Promise<string[]>;
}

interface IpLink {
  ifname: string;
}
interface IpRoute {
  dst: string;
  dev?: string;
  protocol?: string | number;
}

const isMissing = (e: unknown): boolean =>
  e instanceof CommandError && /Cannot find device|does not exist|No such device/i.test(e.result.stderr);

/** iproute2 and iptables(-nft) behind the HostNetwork interface. */
export class IprouteHostNetwork implements HostNetwork {
  constructor(
    private readonly run: Runner,
    private readonly writeSysctl: (path: string, value: string) => Promise<void> = (p, v) => writeFile(p, v),
    private readonly readSysctl: (path: string) => Promise<string> = (p) => readFile(p, 'utf8'),
  ) {}

  async setUpEndpoint(net: NetworkRecord, ep: EndpointRecord): Promise<void> {
    // One `ip` process for the whole endpoint (Join waits on it). -force carries on past a
    // failing line; the only failure allowed is the link existing already (a repeated Join,
    // or the start-up reconciler restoring an endpoint), everything else after it is idempotent.
    // The gateway address sits on every host-side veth of the network (as in CNI's ptp plugin):
    // the container resolves its gateway on its own link, and the host routes each /32.
    const batch = [
      `link add ${ep.hostIf} mtu ${net.mtu} type veth peer name ${ep.containerIf} mtu ${net.mtu}`,
      `link set dev ${ep.hostIf} alias tslink:${net.id.slice(0, 12)}:${ep.id.slice(0, 12)}`,
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
    if (problems.length) throw new CommandError('ip', ['-force', '-batch', '-'], { ...r, stderr: problems.join('\n') });
  }

  async tearDownEndpoint(ep: EndpointRecord): Promise<void> {
    try {
      await mustRun(this.run, 'ip', ['link', 'del', 'dev', ep.hostIf]);
    } catch (e) {
      if (!isMissing(e)) throw e;
    }
  }

  async listLinks(): Promise<string[]> {
    const r = await mustRun(this.run, 'ip', ['-json', 'link', 'show']);
    const links = JSON.parse(r.stdout || '[]') as IpLink[];
    return links.map((l) => l.ifname).filter((n) => n.startsWith(HOST_IF_PREFIX) || n.startsWith(CONTAINER_IF_PREFIX));
  }

  async sweep(live: readonly EndpointRecord[]): Promise<{ removedLinks: string[]; removedRoutes: string[] }> {
    const keep = new Set(live.flatMap((e) => [e.hostIf, e.containerIf]));
    const removedLinks: string[] = [];
    for (const name of await this.listLinks()) {
      if (keep.has(name)) continue;
      try {
        await mustRun(this.run, 'ip', ['link', 'del', 'dev', name]);
        removedLinks.push(name);
      } catch (e) {
        if (!isMissing(e)) throw e; // deleting one end of a pair removes the other
      }
    }
    const keepRoutes = new Set(live.map((e) => `${e.address}`));
    const removedRoutes: string[] = [];
    const r = await mustRun(this.run, 'ip', ['-json', 'route', 'show', 'proto', String(ROUTE_PROTO)]);
    for (const route of JSON.parse(r.stdout || '[]') as IpRoute[]) {
      if (keepRoutes.has(route.dst)) continue;
      await this.run('ip', ['route', 'del', route.dst, 'proto', String(ROUTE_PROTO)]);
      removedRoutes.push(route.dst);
    }
    return { removedLinks, removedRoutes };
  }

  async syncRules(nets: readonly NetworkRecord[]): Promise<void> {
    if (nets.length === 0) {
      await this.removeRules();
      return;
    }
    await this.enableForwarding();
    const tsh = `${HOST_IF_PREFIX}+`;
    // Declaring a chain in iptables-restore flushes it, so each sync rewrites our chains whole
    // and atomically per table; nothing else in the tables is touched (--noflush).
    const filter = [
      '*filter',
      `:${FILTER_CHAIN} - [0:0]`,
      `-A ${FILTER_CHAIN} -i ${tsh} -o ${tsh} -p udp --dport ${WIREGUARD_PORT} -j ACCEPT`,
      `-A ${FILTER_CHAIN} -i ${tsh} -o ${tsh} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT`,
      `-A ${FILTER_CHAIN} -i ${tsh} -o ${tsh} -j DROP`,
      `-A ${FILTER_CHAIN} -i ${tsh} -j ACCEPT`,
      `-A ${FILTER_CHAIN} -o ${tsh} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT`,
      `-A ${FILTER_CHAIN} -o ${tsh} -j DROP`,
      'COMMIT',
    ];
    const nat = ['*nat', `:${NAT_CHAIN} - [0:0]`];
    for (const n of nets) {
      nat.push(`-A ${NAT_CHAIN} -s ${n.subnet} ! -o ${tsh} -m comment --comment tslink:${n.id.slice(0, 12)} -j MASQUERADE`);
    }
    nat.push('COMMIT');
    await mustRun(this.run, 'iptables-restore', ['-w', '--noflush'], { input: [...filter, ...nat].join('\n') + '\n' });
    await this.ensureJump('filter', 'FORWARD', FILTER_CHAIN);
    await this.ensureJump('nat', 'POSTROUTING', NAT_CHAIN);
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
  private async ensureJump(table: string, from: string, to: string): Promise<void> {
    const check = await this.run('iptables', ['-w', '-t', table, '-C', from, '-j', to]);
    if (check.code === 0) return;
    await mustRun(this.run, 'iptables', ['-w', '-t', table, '-I', from, '1', '-j', to]);
  }

  private async removeRules(): Promise<void> {
    for (const [table, from, chain] of [
      ['filter', 'FORWARD', FILTER_CHAIN],
      ['nat', 'POSTROUTING', NAT_CHAIN],
    ] as const) {
      // Remove every copy of the jump (a crash between check and insert could leave two).
      while ((await this.run('iptables', ['-w', '-t', table, '-D', from, '-j', chain])).code === 0) {
        /* keep deleting */
      }
      await this.run('iptables', ['-w', '-t', table, '-F', chain]);
      await this.run('iptables', ['-w', '-t', table, '-X', chain]);
    }
  }
}
