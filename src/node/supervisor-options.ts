import type { ChildProcess } from 'node:child_process';
import type { Logger } from '../util/log.js';
import type { Leftovers } from './daemon-ownership.js';
import type { NodeStatus } from './status.js';
import type { TailscaleCli } from './tailscale-cli.js';
import { DEFAULT_RESTART_POLICY, type RestartPolicyOptions } from './restart-policy.js';

/** How a node is supervised: its waits, bounds and restart policy. */
export interface SupervisorOptions {
  socketWaitMs: number;
  upTimeoutSec: number;
  pollMs: number;
  stopGraceMs: number;
  drainWaitMs: number;
  restart: RestartPolicyOptions;
}

/** How soon a node whose state another process holds tries again. */
/** How often a started tailscaled's socket is tried until it answers. */
export const SOCKET_POLL_MS = 10;
export const LOCK_RETRY_MS = 10_000;

export const DEFAULT_SUPERVISOR_OPTIONS: SupervisorOptions = {
  socketWaitMs: 15_000,
  upTimeoutSec: 60,
  pollMs: 30_000,
  stopGraceMs: 5_000,
  drainWaitMs: 2_000,
  restart: DEFAULT_RESTART_POLICY,
};

export interface NodePaths {
  stateDir: string;
  runDir: string;
  socket: string;
  logFile: string;
}

export interface SupervisorDeps {
  spawnDaemon(args: string[]): ChildProcess;
  /** Readies the container's namespace before each daemon start (best effort). */
  prepareNamespace?(): Promise<void>;
  /** The daemons earlier plugin processes left, found once at start. */
  leftovers?: Leftovers;
  cli: TailscaleCli;
  /** The key to log in with, read only when the state has no login. */
  authKey(): string | undefined;
  onStatus(s: NodeStatus): void;
  log: Logger;
  tailscaledVersion?: string;
  options?: Partial<SupervisorOptions>;
}
