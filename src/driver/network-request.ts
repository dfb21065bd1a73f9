import { parseNetworkOptions } from '../config/network-options.js';
import type { Settings } from '../config/settings.js';
import { parseNetworkId } from '../host/host-spec.js';
import { contains, parseCidr, parseIpv4, parseNetwork } from '../host/ipv4.js';
import type { NetworkRecord } from '../state/store.js';
import { invalid } from './errors.js';
import type * as P from './protocol.js';

/** Everything CreateNetwork carries, checked before anything is stored or run. */
export function networkRecord(req: P.CreateNetworkRequest, settings: Pick<Settings, 'authKey' | 'hostDockerRun'>): NetworkRecord {
  const opts = req.Options ?? {};
  const parsed = parseNetworkOptions(opts['com.docker.network.generic'] ?? {}, {
    envAuthKeyPresent: settings.authKey !== undefined,
    // Only the managed plugin's manifest maps Docker's exec root elsewhere.
    managed: settings.hostDockerRun !== undefined,
  });
  if (!parsed.ok) throw invalid(parsed.message, 'TSLINK_OPTION_INVALID');
  if (opts['com.docker.network.internal'] === true || opts['com.docker.network.internal'] === 'true') {
    throw invalid(
      'tslink: a tslink network cannot be --internal: each container needs outside access to reach its Tailscale control server; create the network without --internal',
      'TSLINK_NETWORK_UNSUPPORTED',
    );
  }
  const v6 = opts['com.docker.network.enable_ipv6'];
  if (v6 === true || v6 === 'true' || (req.IPv6Data?.length ?? 0) > 0) {
    throw invalid('tslink: IPv6 on the Docker side of a tslink network is not supported yet; create the network without --ipv6 (containers still get their Tailscale IPv6 address)', 'TSLINK_NETWORK_UNSUPPORTED');
  }
  const v4 = req.IPv4Data ?? [];
  if (v4.length !== 1) {
    throw invalid(`tslink: a tslink network needs exactly one IPv4 subnet, got ${v4.length}; give one --subnet (or none, and let Docker choose)`, 'TSLINK_NETWORK_UNSUPPORTED');
  }
  const pool = v4[0]!;
  const subnet = parseNetwork(pool.Pool, 1, 30);
  if (!subnet) {
    throw invalid(`tslink: subnet ${JSON.stringify(pool.Pool.slice(0, 40))} is not an IPv4 network from /1 to /30; give a --subnet such as 10.77.0.0/24 (the gateway and each container need an address)`, 'TSLINK_NETWORK_UNSUPPORTED');
  }
  const gwText = pool.Gateway ?? '';
  const gateway = parseIpv4(gwText.split('/')[0] ?? '');
  if (!gwText) throw invalid('tslink: the network has no IPv4 gateway address; give --gateway or let Docker choose one', 'TSLINK_NETWORK_UNSUPPORTED');
  if (!gateway || !contains(subnet, gateway) || (gwText.includes('/') && !parseCidr(gwText))) {
    throw invalid(`tslink: gateway ${JSON.stringify(gwText.slice(0, 40))} is not an IPv4 address in ${subnet}; give a --gateway inside the subnet`, 'TSLINK_NETWORK_UNSUPPORTED');
  }
  const id = parseNetworkId(req.NetworkID);
  if (!id) throw invalid('tslink: the NetworkID is not a Docker or Swarm ID');
  return { id, createdAt: new Date().toISOString(), subnet, gateway, mtu: parsed.config.mtu, config: parsed.config };
}
