import { shortId } from '../util/short-id.js';
import type { HostNetwork } from './network.js';
import { endpointHost, networkHost, type EndpointHost } from './host-spec.js';
import type { Logger } from '../util/log.js';
import type { StateStore } from '../state/store.js';
import type { PortRange } from '../config/settings.js';
import { portForwards } from './wireguard-ports.js';

/**
 * Brings host networking in line with the persisted state: rules for every known network,
 * links and routes for every joined endpoint whose link still exists, and nothing else. The
 * store quarantined invalid records at load, so every record here holds valid values.
 */
export async function reconcileHost(store: StateStore, host: HostNetwork, log: Logger, wireguardPorts?: PortRange): Promise<void> {
  const nets = new Map([...store.networks.values()].map((n) => [n.id, networkHost(n)]));
  await host.syncRules([...nets.values()]);
  const present = new Set(await host.listLinks());
  const live: EndpointHost[] = [];
  const orphans: EndpointHost[] = [];
  for (const ep of store.endpoints.values()) {
    const spec = endpointHost(ep);
    const net = nets.get(ep.networkId);
    if (!net) {
      log.warn({ endpoint: shortId(ep.id), network: shortId(ep.networkId) }, 'endpoint of an unknown network: forgetting it');
      orphans.push(spec);
      await store.deleteEndpoint(ep.id);
      continue;
    }
    live.push(spec);
    // A joined endpoint whose host link is gone lost its container while we were away; Docker
    // will still call DeleteEndpoint for it, or the label reconciler will, so keep the record.
    if (ep.joinedAt && present.has(ep.hostIf)) await host.setUpEndpoint(net, spec);
  }
  await host.tearDownEndpoints(orphans);
  // Forwards of joined endpoints whose link survived; no chain and no jump when the range is off
  // or no network is left.
  await host.syncPortForwards(portForwards(wireguardPorts, [...store.endpoints.values()].filter((ep) => present.has(ep.hostIf))), { keep: nets.size > 0 });
  const swept = await host.sweep(live);
  if (swept.removedLinks.length || swept.removedRoutes.length) log.info(swept, 'removed host objects that belonged to no endpoint');
  log.info({ networks: nets.size, endpoints: live.length }, 'host networking reconciled');
}
