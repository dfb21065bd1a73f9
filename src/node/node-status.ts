import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDir, writeFileAtomic } from '../atomic-file.js';

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

  async write(s: NodeStatus): Promise<void> {
    this.ready ??= ensureDir(this.dir);
    await this.ready;
    await writeFileAtomic(join(this.dir, `${s.endpoint}.json`), JSON.stringify(s, null, 2), 0o600);
  }

  async remove(endpoint: string): Promise<void> {
    await rm(join(this.dir, `${endpoint}.json`), { force: true });
  }
}
