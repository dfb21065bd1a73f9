import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDir, writeFileAtomic } from '../util/atomic-file.js';
import { KeyedMutex } from '../util/keyed-mutex.js';

/** Every state a node reports, in its life's order. */
export const NODE_STATES = [
  'waiting-for-container',
  'starting',
  'running',
  'logged-out',
  'retrying',
  'serving-pending',
  'failed',
  'stopped',
] as const;

export type NodeState = (typeof NODE_STATES)[number];

export const isNodeState = (x: unknown): x is NodeState => NODE_STATES.some((s) => s === x);

/**
 * What a node reports: kept by the node manager, written to `status/<endpoint>.json`, and the
 * node's part of EndpointOperInfo, /v1/endpoints and `tslink status` (same field names throughout).
 */
export interface NodeStatus {
  endpoint: string;
  network: string;
  container?: string;
  containerName?: string;
  state: NodeState;
  since: string;
  hostname?: string;
  tailscaleIPs: string[];
  tailscaledVersion?: string;
  lastError?: string;
  nextAttemptAt?: string;
  /** Which container holds the hostname while this one waits for it. */
  heldBy?: string;
  restarts: number;
  /**
   * The supervisor called the node's repeated crashes a crash loop: it is `failed` until
   * `nextAttemptAt` (the cooldown). False in every other status.
   */
  crashLoop: boolean;
  /** The tailnet's MagicDNS suffix, when MagicDNS is on there (names under it resolve in the container). */
  magicDnsSuffix?: string;
  /**
   * tailscaled's own view of the peers it exchanged traffic with lately (`Active`): over a
   * direct path (`CurAddr` set) or relayed through DERP. Absent until the first status.
   */
  peers?: PeerPaths;
}

export interface PeerPaths {
  direct: number;
  relayed: number;
}

/** Why an endpoint has no node yet: Docker has not named its container, or its labels are invalid. */
export type NoNodeReport =
  | { state: 'waiting-for-container'; lastError?: undefined }
  | { state: 'failed'; lastError: string };

/** What an endpoint reports (EndpointOperInfo, /v1/endpoints): its node's status, or why it has none. */
export type EndpointReport = NodeStatus | NoNodeReport;

/** The report is a node's status (the endpoint has a node, or had one). */
export const hasNode = (r: EndpointReport): r is NodeStatus => 'endpoint' in r;

/**
 * A NodeStatus read back from JSON (a status file, or an /v1/endpoints entry, which is a status
 * without tailscaledVersion). Fields a file of an older tslink lacks get their defaults; a value
 * that is no status at all throws.
 */
export function parseNodeStatus(json: unknown): NodeStatus {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('a node status is not a JSON object');
  const f = new Map<string, unknown>(Object.entries(json));
  const str = (k: string): string | undefined => {
    const v = f.get(k);
    return typeof v === 'string' ? v : undefined;
  };
  const endpoint = str('endpoint');
  const network = str('network');
  const state = f.get('state');
  if (endpoint === undefined || network === undefined) throw new Error('a node status names no endpoint or network');
  if (!isNodeState(state)) throw new Error(`a node status has no known state (${JSON.stringify(state)?.slice(0, 40)})`);
  const ips = f.get('tailscaleIPs');
  const restarts = f.get('restarts');
  return {
    endpoint,
    network,
    container: str('container'),
    containerName: str('containerName'),
    state,
    since: str('since') ?? '',
    hostname: str('hostname'),
    tailscaleIPs: Array.isArray(ips) ? ips.filter((ip): ip is string => typeof ip === 'string') : [],
    tailscaledVersion: str('tailscaledVersion'),
    lastError: str('lastError'),
    nextAttemptAt: str('nextAttemptAt'),
    heldBy: str('heldBy'),
    restarts: typeof restarts === 'number' ? restarts : 0,
    crashLoop: f.get('crashLoop') === true,
    magicDnsSuffix: str('magicDnsSuffix'),
    peers: peerPaths(f.get('peers')),
  };
}

function peerPaths(v: unknown): PeerPaths | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const { direct, relayed } = v as Record<string, unknown>;
  return typeof direct === 'number' && typeof relayed === 'number' ? { direct, relayed } : undefined;
}

/** `status/<endpoint>.json` under the data directory: what operators and EndpointOperInfo read. */
export class StatusFiles {
  private readonly dir: string;
  private ready?: Promise<void>;

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'status');
  }

  private readonly latest = new Map<string, NodeStatus | undefined>();
  private readonly queue = new KeyedMutex();

  /** Writes are serialised per endpoint and each writes the latest status, so the file never lags. */
  async write(s: NodeStatus): Promise<void> {
    this.latest.set(s.endpoint, s);
    await this.flush(s.endpoint);
  }

  private flush(endpoint: string): Promise<void> {
    return this.queue.run(endpoint, async () => {
      this.ready ??= ensureDir(this.dir);
      await this.ready;
      const s = this.latest.get(endpoint);
      const file = join(this.dir, `${endpoint}.json`);
      // A status is rewritten at every change and at start: it needs no fsync.
      if (s) await writeFileAtomic(file, JSON.stringify(s, null, 2), 0o600, { durable: false });
      else await rm(file, { force: true });
    });
  }

  async remove(endpoint: string): Promise<void> {
    this.latest.set(endpoint, undefined);
    await this.flush(endpoint);
    this.latest.delete(endpoint);
  }
}
