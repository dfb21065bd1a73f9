import { mustRun, type Runner } from '../util/exec.js';
import type { PortRange } from '../config/settings.js';
import { WIREGUARD_PORT } from '../config/tailnet.js';
import { wireSuffixHex, type DnsSuffix } from './dns-name.js';
import type { Ipv4Address } from './ipv4.js';
import type { NetnsPath } from './netns.js';

/** A peer on the same tslink network: its Docker address leads to its tailnet address. */
export interface PeerRoute {
  docker: Ipv4Address;
  tailnet: Ipv4Address;
}

/** What a container's own netfilter rules do for its names (issue 24). */
export interface ContainerNat {
  /** Queries for names under this suffix go to the container's own tailscaled (quad-100). */
  magicDns?: DnsSuffix;
  peers: readonly PeerRoute[];
  /** The node's own WireGuard port: what tailscaled sends from it is never redirected. */
  wireguardPort: number;
  /** The range the containers' ports come from: WireGuard to a peer's port is never redirected either. */
  wireguardPorts?: PortRange;
}

/** Our chains and the built-in chain each must come first in (table, built-in, ours). */
const JUMPS = [
  ['nat', 'OUTPUT', 'TSLINK-OUTPUT'],
  ['nat', 'POSTROUTING', 'TSLINK-POSTROUTING'],
  ['raw', 'PREROUTING', 'TSLINK-PREROUTING'],
] as const;

/** Docker's embedded resolver, which every container on a user-defined network asks. */
const DOCKER_DNS = '127.0.0.11';
const QUAD_100 = '100.100.100.100';
/**
 * What tailscaled marks its own packets with (WireGuard, disco, DNS forwarding): never
 * redirected, so direct paths between containers over the Docker network stay as they are.
 */
const TAILSCALE_BYPASS_MARK = '0x80000/0xff0000';

/**
 * The rules, as `iptables-restore --noflush` input that rewrites our chains whole and puts each
 * jump first in its built-in chain (`current`: `iptables-save` of the namespace; undefined: the
 * jumps are in place and only the chains are written).
 *
 * - A UDP query to Docker's resolver for a name under the MagicDNS suffix goes to quad-100
 *   instead. Every other query reaches Docker's resolver as before, so Docker's names and public
 *   names never depend on tailscaled. (A query over TCP cannot be matched: its first packet has
 *   no name; DNS uses TCP only for answers too long for UDP.)
 * - A connection to a peer's Docker address goes to its tailnet address, so it crosses the
 *   tailnet and the tailnet's ACLs decide (the Docker path between tslink containers is closed).
 * - Both leave with the node's own address (MASQUERADE on tailscale0 for what was redirected).
 *   The query's source is 127.0.0.1, which the kernel routes out of `lo` only with
 *   route_localnet; the raw rule then keeps 127/8 from arriving on any other link.
 */
export function natRestoreInput(nat: ContainerNat, current: string | undefined): string {
  const out = [
    `-A TSLINK-OUTPUT -m mark --mark ${TAILSCALE_BYPASS_MARK} -j RETURN`,
    `-A TSLINK-OUTPUT -p udp --sport ${nat.wireguardPort} -j RETURN`,
    `-A TSLINK-OUTPUT -p udp -m multiport --dports ${WIREGUARD_PORT}${nat.wireguardPorts ? `,${nat.wireguardPorts.first}:${nat.wireguardPorts.last}` : ''} -j RETURN`,
  ];
  if (nat.magicDns) {
    out.push(`-A TSLINK-OUTPUT -d ${DOCKER_DNS}/32 -p udp --dport 53 -m string --algo bm --icase --hex-string "${wireSuffixHex(nat.magicDns)}" -j DNAT --to-destination ${QUAD_100}:53`);
  }
  for (const p of nat.peers) out.push(`-A TSLINK-OUTPUT -d ${p.docker}/32 -j DNAT --to-destination ${p.tailnet}`);
  const byTable = {
    nat: [':TSLINK-OUTPUT - [0:0]', ':TSLINK-POSTROUTING - [0:0]', ...out, '-A TSLINK-POSTROUTING -o tailscale0 -m conntrack --ctstate DNAT -j MASQUERADE'],
    raw: [':TSLINK-PREROUTING - [0:0]', '-A TSLINK-PREROUTING ! -i lo -d 127.0.0.0/8 -j DROP'],
  };
  if (current !== undefined) for (const [table, builtin, chain] of JUMPS) byTable[table].push(...jumpFirst(current, table, builtin, chain));
  return ['*raw', ...byTable.raw, 'COMMIT', '*nat', ...byTable.nat, 'COMMIT', ''].join('\n');
}

/** Rules that leave exactly one jump to `chain`, first in `builtin` (Docker inserts its own at the top too). */
function jumpFirst(saved: string, table: string, builtin: string, chain: string): string[] {
  const rules = tableRules(saved, table).filter((r) => r.startsWith(`-A ${builtin} `));
  const jump = `-A ${builtin} -j ${chain}`;
  const ours = rules.filter((r) => r === jump).length;
  if (rules[0] === jump && ours === 1) return [];
  return [...Array<string>(ours).fill(`-D ${builtin} -j ${chain}`), `-I ${builtin} 1 -j ${chain}`];
}

function tableRules(saved: string, table: string): string[] {
  const lines = saved.split('\n');
  const start = lines.indexOf(`*${table}`);
  if (start < 0) return [];
  const end = lines.indexOf('COMMIT', start);
  return lines.slice(start + 1, end < 0 ? undefined : end).filter((l) => l.startsWith('-A '));
}

/**
 * How a sync writes: `fresh` writes ours with our jumps first into a namespace that has no rules
 * of ours yet (one a Join in this process made: nothing to read first); `write` reads the
 * namespace's rules first, to leave exactly one jump of ours first; `chains` rewrites our chains
 * only (the jumps are in place); `repair` reads, and writes only when a jump of ours is missing or
 * no longer first.
 */
export type NatSyncMode = 'fresh' | 'write' | 'chains' | 'repair';

/**
 * route_localnet in the same process as the rules, after them (the raw rule that keeps 127/8 from
 * arriving on other links is in place first). Only in this namespace, which goes with its
 * container. A managed plugin's /proc/sys is read-only: a proc of its own, in a mount namespace
 * of its own, is not.
 */
const RESTORE_THEN_LOCALNET = 'iptables-restore -w --noflush && echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet';

/**
 * Makes the rules in the container's namespace what `natRestoreInput` says; answers whether it
 * wrote. `localnet`: turn route_localnet on with them (MagicDNS needs it, once).
 */
export async function syncContainerNat(run: Runner, netns: NetnsPath, nat: ContainerNat, mode: NatSyncMode, localnet = false): Promise<boolean> {
  const restore = (input: string, localnet: boolean): Promise<unknown> =>
    localnet
      ? mustRun(run, 'nsenter', [`--net=${netns}`, 'unshare', '--mount-proc', 'sh', '-c', RESTORE_THEN_LOCALNET], { input })
      : mustRun(run, 'nsenter', [`--net=${netns}`, 'iptables-restore', '-w', '--noflush'], { input });
  if (mode === 'chains') {
    await restore(natRestoreInput(nat, undefined), localnet);
    return true;
  }
  // An empty save is what a namespace without rules of ours reads as: the jumps go in first.
  const saved = mode === 'fresh' ? '' : (await mustRun(run, 'nsenter', [`--net=${netns}`, 'iptables-save'])).stdout;
  if (mode === 'repair' && JUMPS.every(([table, builtin, chain]) => jumpFirst(saved, table, builtin, chain).length === 0)) return false;
  await restore(natRestoreInput(nat, saved), localnet);
  return true;
}
