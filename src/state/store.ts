import { rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
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
  /**
   * Docker's name for the network, which Docker does not send to a driver: learnt from a network
   * snapshot before the first node starts, and the scope of the network's node identities.
   */
  name?: string;
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
  /** Who named the container; 'join' appears only in records of tslink before 0.2 (Join-time inference, removed). */
  boundVia?: 'join' | 'snapshot' | 'event' | 'listing';
  boundAt?: string;
  /** The UDP port of the container's tailscaled, its own on this host (absent: 41641, shared). */
  wireguardPort?: number;
  /** The container's validated labels, or why they are invalid. */
  config?: ContainerConfig;
  configError?: string;
}

/** The disk refused a record (read-only, full): nothing was changed, in memory or on disk. */
export class StateWriteError extends Error {}

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

  /**
   * Loads everything on disk. A record that cannot be read, or that `check` refuses (it throws
   * why), is moved to quarantine/ and reported, never fatal: one bad file must not keep the
   * plugin from starting.
   */
  async load(check: { network?(r: NetworkRecord): void; endpoint?(r: EndpointRecord): void } = {}): Promise<{ file: string; error: string }[]> {
    await ensureDir(this.dataDir);
    await ensureDir(this.netDir);
    await ensureDir(this.epDir);
    const nets = await readJsonDir<NetworkRecord>(this.netDir);
    const eps = await readJsonDir<EndpointRecord>(this.epDir);
    const bad = [...nets.bad, ...eps.bad];
    const admit = <T extends { id?: unknown }>(dir: string, items: (T & { file: string })[], into: Map<string, T>, fn?: (r: T) => void): void => {
      for (const { file, ...r } of items) {
        const rec = r as unknown as T;
        try {
          if (typeof rec.id !== 'string' || `${rec.id}.json` !== file) throw new Error('its id does not match its file name');
          fn?.(rec);
          into.set(rec.id, rec);
        } catch (e) {
          bad.push({ file: join(dir, file), error: (e as Error).message });
        }
      }
    };
    admit(this.netDir, nets.items, this.networks, check.network);
    admit(this.epDir, eps.items, this.endpoints, check.endpoint);
    for (const b of bad) await this.quarantine(b.file);
    return bad;
  }

  /** Moves a record file aside (quarantine/), where an operator can read why it was refused. */
  private async quarantine(file: string): Promise<void> {
    const dir = join(this.dataDir, 'quarantine');
    await ensureDir(dir);
    await rename(file, join(dir, `${Date.now()}-${basename(file)}`)).catch(() => undefined);
  }

  async putNetwork(rec: NetworkRecord): Promise<void> {
    await this.change(this.networks, this.netDir, rec.id, rec);
  }

  async deleteNetwork(id: string): Promise<void> {
    await this.change(this.networks, this.netDir, id, undefined);
  }

  /**
   * Deletes a network whose removal has a step that must no longer see it (the rules sync, which
   * reads the networks): the record leaves memory, `step` runs, and then the deletion is written.
   * When `step` throws, the record is back in memory and nothing is written; when the disk
   * refuses, memory takes the record back as well (StateWriteError), as after any change.
   */
  async deleteNetworkAfter(id: string, step: () => Promise<void>): Promise<void> {
    const prev = this.networks.get(id);
    this.networks.delete(id);
    try {
      await step();
    } catch (e) {
      if (prev) this.networks.set(id, prev);
      throw e;
    }
    await this.change(this.networks, this.netDir, id, undefined, prev);
  }

  async putEndpoint(rec: EndpointRecord): Promise<void> {
    await this.change(this.endpoints, this.epDir, rec.id, rec);
  }

  /**
   * Sets (or deletes) a record in memory and on disk. When the disk refuses (read-only, full),
   * memory goes back to what it held (`prev`), so the two never disagree, and the error says where.
   */
  private async change<T extends object>(map: Map<string, T>, dir: string, id: string, next: T | undefined, prev = map.get(id)): Promise<void> {
    if (next) map.set(id, next);
    else map.delete(id);
    try {
      await this.persist(dir, id, () => map.get(id));
    } catch (e) {
      if (map.get(id) === next) {
        if (prev) map.set(id, prev);
        else map.delete(id);
      }
      throw new StateWriteError(`tslink: could not save the plugin's state in ${dir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); check that the data directory is writable and not full`);
    }
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
    await this.change(this.endpoints, this.epDir, id, undefined);
  }

  private readonly writes = new KeyedMutex();

  /**
   * Memory is the truth; the file follows it. Writes of one object are serialised and each
   * writes what memory holds then, so the last state always wins on disk too. Only network
   * records are fsync'd: Docker never sends a network's options again, while an endpoint lost in
   * a power cut is one Docker itself deletes or joins anew after the reboot (and the fsyncs were
   * on the path of every `docker run`: CreateEndpoint and Join each wrote one record).
   */
  private persist(dir: string, id: string, current: () => object | undefined): Promise<void> {
    const file = join(dir, `${id}.json`);
    return this.writes.run(file, async () => {
      const rec = current();
      if (rec) await writeFileAtomic(file, JSON.stringify(rec, null, 2), 0o600, { durable: dir === this.netDir });
      else await rm(file, { force: true });
    });
  }

  endpointsOf(networkId: string): EndpointRecord[] {
    return [...this.endpoints.values()].filter((e) => e.networkId === networkId);
  }
}
