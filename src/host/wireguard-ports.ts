import { WIREGUARD_PORT } from '../config/tailnet.js';
import type { PortRange } from '../config/settings.js';

/**
 * Each container's tailscaled gets a UDP port of its own on this host (issue 25). The host's
 * MASQUERADE keeps a source port that no other flow uses, so each node's mapping to the outside
 * is then the same for every peer (endpoint-independent), which is what Tailscale needs to
 * connect peers on other hosts directly. With one shared port (41641) the second container's
 * mapping changes per destination, and peers fall back to a relay.
 *
 * The lowest port of the range that no endpoint of this host (any network) holds, or the shared
 * one when the range is off or used up.
 */
export function freeWireguardPort(range: PortRange | undefined, eps: Iterable<{ wireguardPort?: number }>): number {
  if (!range) return WIREGUARD_PORT;
  const taken = new Set([...eps].flatMap((e) => (e.wireguardPort ? [e.wireguardPort] : [])));
  for (let p = range.first; p <= range.last; p++) if (!taken.has(p)) return p;
  return WIREGUARD_PORT;
}

/** A port a record holds, when it is one (records of tslink before 0.4 hold none: 41641). */
export const parseWireguardPort = (v: unknown): number | undefined => (Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535 ? (v as number) : undefined);
