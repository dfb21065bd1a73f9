import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDir, readJsonDir, writeFileAtomic } from '../util/atomic-file.js';
import { KeyedMutex } from '../util/keyed-mutex.js';
import type { ContainerConfig } from '../config/labels.js';
import type { NetworkConfig } from '../config/network-options.js';

export interface NetworkRecord {
  id: string;
  createdAt: string;
  /** IPv4 pool of the network, CIDR. */
  subnet: string;
  /** Gateway address without prefix: it lives on every host-side veth of the network. */
  gateway: string;
  mtu: number;
  /** The parsed `--opt` set; holds the network's auth key when one was given (file mode 0600). */
  config: NetworkConfig;
}

export interface EndpointRecord {
  id: string;
  networkId: string;
  /** IPAM address without prefix, and the prefix length Docker puts on the container's interface. */
  address: string;
  prefixLen: number;
  hostIf: string;
  containerIf: string;
  createdAt: string;
  sandboxKey?: string;
  joinedAt?: string;
  containerId?: string;
  containerName?: string;
  boundVia?: 'join' | 'snapshot' | 'event' | 'listing';
  boundAt?: string;
  /** The container's validated labels, or why they are invalid. */
  config?: ContainerConfig;
  configError?: string;
}

/**
 * Durable record of networks and endpoints: one JSON file per object, written atomically, so a
 * plugin killed at any moment comes back knowing everything Docker will not tell it again.
 */
export class StateStore {
  readonly networks = new Map<string, NetworkRecord>();
  readonly endpoints = new Map<string, EndpointRecord>();
  private readonly netDir: string;
  private readonly epDir: string;

  constructor(readonly dataDir: string) {
    this.netDir = join(dataDir, 'networks');
    this.epDir = join(dataDir, 'endpoints');
  }

  /** Loads everything on disk; returns files that could not be read so the caller can log them. */
  async load(): Promise<{ file: string; error: string }[]> {
    await ensureDir(this.dataDir);
    await ensureDir(this.netDir);
    await ensureDir(this.epDir);
    const nets = await readJsonDir<NetworkRecord>(this.netDir);
    const eps = await readJsonDir<EndpointRecord>(this.epDir);
    for (const n of nets.items) if (typeof n?.id === 'string') this.networks.set(n.id, n);
    for (const e of eps.items) if (typeof e?.id === 'string') this.endpoints.set(e.id, e);
    return [...nets.bad, ...eps.bad];
  }

  async putNetwork(rec: NetworkRecord): Promise<void> {
    this.networks.set(rec.id, rec);
    await this.persist(this.netDir, rec.id, () => this.networks.get(rec.id));
  }

  async deleteNetwork(id: string): Promise<void> {
    this.networks.delete(id);
    await this.persist(this.netDir, id, () => undefined);
  }

  async putEndpoint(rec: EndpointRecord): Promise<void> {
    this.endpoints.set(rec.id, rec);
    await this.persist(this.epDir, rec.id, () => this.endpoints.get(rec.id));
  }

  /** Merges into the current record, so concurrent writers (Join, the binder) never undo each other. */
  async patchEndpoint(id: string, patch: Partial<EndpointRecord>): Promise<EndpointRecord | undefined> {
    const cur = this.endpoints.get(id);
    if (!cur) return undefined;
    const next = { ...cur, ...patch, id };
    await this.putEndpoint(next);
    return next;
  }

  async deleteEndpoint(id: string): Promise<void> {
    this.endpoints.delete(id);
    await this.persist(this.epDir, id, () => undefined);
  }

  private readonly writes = new KeyedMutex();

  /**
   * Memory is the truth; the file follows it. Writes of one object are serialised and each
   * writes what memory holds then, so the last state always wins on disk too.
   */
  private persist(dir: string, id: string, current: () => object | undefined): Promise<void> {
    const file = join(dir, `${id}.json`);
    return this.writes.run(file, async () => {
      const rec = current();
      if (rec) await writeFileAtomic(file, JSON.stringify(rec, null, 2));
      else await rm(file, { force: true });
    });
  }

  endpointsOf(networkId: string): EndpointRecord[] {
    return [...this.endpoints.values()].filter((e) => e.networkId === networkId);
  }
}
