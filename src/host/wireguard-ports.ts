import { WIREGUARD_PORT } from '../config/tailnet.js';
import type { PortRange } from '../config/settings.js';
import { parseIpv4, type Ipv4Address } from './ipv4.js';

/**
 * Each container's tailscaled gets a UDP port of its own on this host (issue 25), and the host
 * forwards that port to it (`HostNetwork.syncPortForwards`). The host's MASQUERADE then keeps a
 * source port no other flow uses, so each node's mapping to the outside is the same for every
 * peer, and a peer's first packet to that port reaches the node instead of the host: what a peer
 * behind a NAT of its own needs to connect directly. With one shared port (41641) the second
 * container's mapping changes per destination, and peers fall back to a relay.
 *
 * The first port of the range after the one the newest endpoint holds (wrapping), that no
 * endpoint of this host (any network) holds: a port freed by Leave is reused last, so the kernel's
 * conntrack entries of peers still sending to its former node (refreshed by every packet, up to
 * 30 s apart) are gone before another node gets it. The shared port when the range is off or
 * used up.
 */
export function freeWireguardPort(range: PortRange | undefined, eps: Iterable<{ wireguardPort?: number; createdAt?: string }>): number {
  if (!range) return WIREGUARD_PORT;
  // One pass (CreateEndpoint runs this on every endpoint of the host: no sort on that path).
  const taken = new Set<number>();
  let newest: { port: number; at: string } | undefined;
  for (const e of eps) {
    if (!e.wireguardPort) continue;
    taken.add(e.wireguardPort);
    if (inRange(range, e.wireguardPort) && (!newest || (e.createdAt ?? '') >= newest.at)) newest = { port: e.wireguardPort, at: e.createdAt ?? '' };
  }
  const size = range.last - range.first + 1;
  const start = newest === undefined ? 0 : newest.port - range.first + 1;
  for (let i = 0; i < size; i++) {
    const p = range.first + ((start + i) % size);
    if (!taken.has(p)) return p;
  }
  return WIREGUARD_PORT;
}

/** A port a record holds, when it is one (records of tslink before 0.4 hold none: 41641). */
export const parseWireguardPort = (v: unknown): number | undefined => (Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535 ? (v as number) : undefined);

const inRange = (range: PortRange, port: number | undefined): port is number => port !== undefined && port >= range.first && port <= range.last;

/** A host UDP port forwarded to a container's tailscaled on the same port. */
export interface PortForward {
  address: Ipv4Address;
  port: number;
}

/**
 * The forwards this host should have: one per joined endpoint holding a port of the range (the
 * shared 41641 is never forwarded: many nodes hold it). Records with invalid values are left out.
 */
export function portForwards(range: PortRange | undefined, eps: Iterable<{ address: string; wireguardPort?: number; joinedAt?: string }>): PortForward[] {
  if (!range) return [];
  return [...eps].flatMap((e) => {
    const address = parseIpv4(e.address);
    const port = parseWireguardPort(e.wireguardPort);
    return e.joinedAt && address && inRange(range, port) ? [{ address, port }] : [];
  }).sort((a, b) => a.port - b.port);
}
