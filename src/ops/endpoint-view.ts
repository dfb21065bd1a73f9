import type { EndpointRecord } from '../state/store.js';
import { hasNode, type EndpointReport, type NodeStatus } from '../node/status.js';

/**
 * One endpoint as operators see it (`/v1/endpoints`, `tslink status`): its node's status without
 * the daemon's version, with the same field names as the status files.
 */
export type EndpointView = Omit<NodeStatus, 'tailscaledVersion'>;

/** An endpoint's record and what it reports (`operInfo`) as one view. */
export function endpointView(ep: EndpointRecord, report: EndpointReport): EndpointView {
  const node = hasNode(report) ? report : undefined;
  return {
    endpoint: ep.id,
    network: ep.networkId,
    container: ep.containerId,
    containerName: ep.containerName,
    hostname: node?.hostname ?? ep.config?.hostname,
    state: report.state,
    tailscaleIPs: node?.tailscaleIPs ?? [],
    lastError: report.lastError ?? ep.configError,
    since: node?.since ?? ep.joinedAt ?? ep.createdAt,
    restarts: node?.restarts ?? 0,
    nextAttemptAt: node?.nextAttemptAt,
    heldBy: node?.heldBy,
    crashLoop: node?.crashLoop ?? false,
    magicDnsSuffix: node?.magicDnsSuffix,
    peers: node?.peers,
  };
}
