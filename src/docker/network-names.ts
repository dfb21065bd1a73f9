import type { DockerApi } from './api.js';
import type { NetworkRecord, StateStore } from '../state/store.js';

/**
 * Docker's names of tslink's networks. Docker never sends a driver the name, but node identities
 * are scoped by it (a network made anew under the same name keeps its nodes): it is learnt from a
 * listing or a snapshot, or read once, and kept in the network's record.
 */
export class NetworkNames {
  constructor(
    private readonly store: StateStore,
    private readonly docker: Pick<DockerApi, 'inspectNetwork'>,
  ) {}

  /** Keeps a network's name in its record (a write only when it is new). */
  async learn(netId: string, name: string): Promise<void> {
    const net = this.store.networks.get(netId);
    if (net && net.name !== name) await this.store.putNetwork({ ...net, name });
  }

  /** The network's name, from its record or else from Docker. */
  async of(netId: string): Promise<string> {
    const known = this.store.networks.get(netId)?.name;
    if (known !== undefined) return known;
    const { name } = await this.docker.inspectNetwork(netId);
    await this.learn(netId, name);
    return name;
  }

  /** The network's record with its name known. */
  async named(net: NetworkRecord): Promise<NetworkRecord> {
    if (net.name !== undefined) return net;
    await this.of(net.id);
    return this.store.networks.get(net.id) ?? net;
  }
}
