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
export const LOCK_RETRY_MS = 10_000;

export const DEFAULT_SUPERVISOR_OPTIONS: SupervisorOptions = {
  socketWaitMs: 15_000,
  upTimeoutSec: 60,
  pollMs: 30_000,
  stopGraceMs: 5_000,
  drainWaitMs: 2_000,
  restart: DEFAULT_RESTART_POLICY,
};
