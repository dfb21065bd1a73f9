import { join } from 'node:path';

/**
 * Where a node identity (tailscaled's state: its node key, hence its node in control and its
 * address) lives: one per network name and hostname. A container on another network never
 * resumes, logs out or deletes it, whatever hostname it asks for. The network's name, not its
 * ID, is the scope: `docker compose down` and `up` make a new network of the same name, and its
 * containers must come back as the same nodes.
 */
export const IDENTITIES = 'identities';
/** tslink before 0.3 kept identities by hostname alone; a start moves them (see adoptLegacy in manager.ts). */
export const LEGACY_IDENTITIES = 'by-hostname';

/** Docker's network names (daemon/network: validNetworkName), and never a path step. */
const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$/;

/** The directory part that scopes a network's identities: its name, or its ID if Docker gave no usable name. */
export function identityScope(net: { id: string; name?: string }): string {
  return net.name !== undefined && NETWORK_NAME.test(net.name) ? net.name : net.id;
}

export function identityDir(dataDir: string, net: { id: string; name?: string }, hostname: string): string {
  return join(dataDir, IDENTITIES, identityScope(net), hostname);
}
