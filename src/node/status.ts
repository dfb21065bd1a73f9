import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDir, writeFileAtomic } from '../util/atomic-file.js';
import { KeyedMutex } from '../util/keyed-mutex.js';

export type NodeState =
  | 'waiting-for-container'
  | 'starting'
  | 'running'
  | 'logged-out'
  | 'retrying'
  | 'serving-pending'
  | 'failed'
  | 'stopped';

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
