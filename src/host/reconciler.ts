import { shortId } from '../util/short-id.js';
import type { HostNetwork } from './network.js';
import type { Logger } from '../util/log.js';
import type { StateStore } from '../state/store.js';

/**
 * Brings host networking in line with the persisted state: rules for every known network,
 * links and routes for every joined endpoint whose link still exists, and nothing else.
 */
export async function reconcileHost(store: StateStore, host: HostNetwork, log: Logger): Promise<void> {
  const nets = [...store.networks.values()];
  await host.syncRules(nets);
  const present = new Set(await host.listLinks());
  const live = [];
  for (const ep of store.endpoints.values()) {
    const net = store.networks.get(ep.networkId);
    if (!net) {
      log.warn({ endpoint: shortId(ep.id), network: shortId(ep.networkId) }, 'endpoint of an unknown network: forgetting it');
      await host.tearDownEndpoint(ep);
      await store.deleteEndpoint(ep.id);
      continue;
    }
    live.push(ep);
    // A joined endpoint whose host link is gone lost its container while we were away; Docker
    // will still call DeleteEndpoint for it, or the label reconciler will, so keep the record.
    if (ep.joinedAt && present.has(ep.hostIf)) await host.setUpEndpoint(net, ep);
  }
  const swept = await host.sweep(live);
  if (swept.removedLinks.length || swept.removedRoutes.length) log.info(swept, 'removed host objects that belonged to no endpoint');
  log.info({ networks: nets.length, endpoints: live.length }, 'host networking reconciled');
}
