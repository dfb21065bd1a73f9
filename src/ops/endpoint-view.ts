import type { EndpointRecord } from '../state/store.js';

/** One endpoint as operators see it (`/v1/endpoints`, `tslink status`). */
export interface EndpointView {
  endpoint: string;
  network: string;
  container?: string;
  containerName?: string;
  hostname?: string;
  state: string;
  tailscaleIPs: string[];
  lastError?: string;
  since?: string;
  restarts: number;
  nextAttemptAt?: string;
  heldBy?: string;
}

/** An endpoint's record and its node's status (`operInfo`) as one view. */
export function endpointView(ep: EndpointRecord, node: Record<string, unknown>): EndpointView {
  const str = (k: string): string | undefined => (typeof node[k] === 'string' ? (node[k] as string) : undefined);
  return {
    endpoint: ep.id,
    network: ep.networkId,
    container: ep.containerId,
    containerName: ep.containerName,
    hostname: str('hostname') ?? ep.config?.hostname,
    state: str('state') ?? 'waiting-for-container',
    tailscaleIPs: Array.isArray(node['tailscaleIPs']) ? (node['tailscaleIPs'] as string[]) : [],
    lastError: str('lastError') ?? ep.configError,
    since: str('since') ?? ep.joinedAt ?? ep.createdAt,
    restarts: typeof node['restarts'] === 'number' ? (node['restarts'] as number) : 0,
    nextAttemptAt: str('nextAttemptAt'),
    heldBy: str('heldBy'),
  };
}
