/** The plugin's settings: its environment, as `docker plugin set` and a legacy install give it. */
import { HIDDEN, type Parsed, failed, show } from './messages.js';
import { authKeyProblem, scrubKey } from './network-options.js';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

export interface Settings {
  /** A secret: TS_AUTHKEY. */
  authKey?: string;
  dataDir: string;
  tsPath?: string;
  logLevel: LogLevel;
  socketPath: string;
  dockerSocket: string;
  eventsMinBackoffMs: number;
  eventsMaxBackoffMs: number;
  eventsQueueSize: number;
  /** Wait after five crashes of a node's tailscaled in 30 s before trying again. */
  crashCooldownMs: number;
  /** How long a drained Service backend waits for control to see the drain before stopping. */
  drainWaitMs: number;
  /** Steady-state `tailscale status` poll per node. */
  statusPollMs: number;
  /** Where Docker's exec root (/var/run/docker) is mounted, when not at its own path (managed plugin). */
  hostDockerRun?: string;
}


export const DEFAULT_SETTINGS = {
  dataDir: '/var/lib/docker-plugins/tailscale',
  logLevel: 'info' as LogLevel,
  socketPath: '/run/docker/plugins/tslink.sock',
  dockerSocket: '/var/run/docker.sock',
  eventsMinBackoffMs: 250,
  eventsMaxBackoffMs: 30_000,
  eventsQueueSize: 1000,
  crashCooldownMs: 300_000,
  drainWaitMs: 2_000,
  statusPollMs: 30_000,
} as const;


type Env = Readonly<Record<string, string | undefined>>;

/** An env value; empty counts as unset. */
const envValue = (env: Env, name: string): string | undefined => (env[name] === '' ? undefined : env[name]);

/** Longest unix socket path (sun_path holds 108 bytes with the terminating NUL). */
const MAX_SOCKET_PATH = 107;

function absolutePath(env: Env, name: string, errors: string[], example: string): string | undefined {
  const v = envValue(env, name);
  if (v !== undefined && !v.startsWith('/')) errors.push(`tslink: ${name}=${show(v)} must be an absolute path, e.g. ${example}`);
  return v;
}

function socketPath(env: Env, name: string, fallback: string, errors: string[]): string {
  const v = absolutePath(env, name, errors, fallback) ?? fallback;
  if (Buffer.byteLength(v) > MAX_SOCKET_PATH) errors.push(`tslink: ${name}=${show(v)} is too long for a unix socket path (${Buffer.byteLength(v)} bytes, the limit is ${MAX_SOCKET_PATH})`);
  return v;
}

function wholeNumber(env: Env, name: string, fallback: number, min: number, max: number, errors: string[]): number {
  const v = envValue(env, name);
  if (v === undefined) return fallback;
  const n = /^[0-9]{1,10}$/.test(v.trim()) ? Number(v.trim()) : NaN;
  if (n >= min && n <= max) return n;
  errors.push(`tslink: ${name}=${show(v)} must be a whole number from ${min} to ${max} (the default is ${fallback})`);
  return fallback;
}

function logLevel(env: Env, errors: string[]): LogLevel {
  const v = envValue(env, 'LOG_LEVEL');
  if (v === undefined) return DEFAULT_SETTINGS.logLevel;
  const level = v.trim().toLowerCase();
  if ((LOG_LEVELS as readonly string[]).includes(level)) return level as LogLevel;
  errors.push(`tslink: LOG_LEVEL=${show(v)} is not a log level; use one of ${LOG_LEVELS.join(', ')} (the default is ${DEFAULT_SETTINGS.logLevel})`);
  return DEFAULT_SETTINGS.logLevel;
}

/**
 * The plugin's settings from its environment: TS_AUTHKEY, TS_DATA_DIR, TS_PATH, LOG_LEVEL,
 * TSLINK_SOCKET, DOCKER_SOCKET, TSLINK_EVENTS_MIN_BACKOFF_MS, TSLINK_EVENTS_MAX_BACKOFF_MS and
 * TSLINK_EVENTS_QUEUE. Empty values count as unset.
 */
export function parseSettings(env: Env): Parsed<'settings', Settings> {
  const errors: string[] = [];
  const authKey = envValue(env, 'TS_AUTHKEY');
  const keyProblem = authKey === undefined ? undefined : authKeyProblem(authKey, 'env');
  if (keyProblem) errors.push(`tslink: TS_AUTHKEY=${HIDDEN}: ${keyProblem}; set it to the key itself, e.g. tskey-auth-...`);
  const tsPath = absolutePath(env, 'TS_PATH', errors, '/usr/local/bin');
  const settings: Settings = {
    ...(authKey !== undefined && !keyProblem ? { authKey } : {}),
    dataDir: absolutePath(env, 'TS_DATA_DIR', errors, DEFAULT_SETTINGS.dataDir) ?? DEFAULT_SETTINGS.dataDir,
    ...(tsPath !== undefined ? { tsPath } : {}),
    logLevel: logLevel(env, errors),
    socketPath: socketPath(env, 'TSLINK_SOCKET', DEFAULT_SETTINGS.socketPath, errors),
    dockerSocket: socketPath(env, 'DOCKER_SOCKET', DEFAULT_SETTINGS.dockerSocket, errors),
    eventsMinBackoffMs: wholeNumber(env, 'TSLINK_EVENTS_MIN_BACKOFF_MS', DEFAULT_SETTINGS.eventsMinBackoffMs, 1, 600_000, errors),
    eventsMaxBackoffMs: wholeNumber(env, 'TSLINK_EVENTS_MAX_BACKOFF_MS', DEFAULT_SETTINGS.eventsMaxBackoffMs, 1, 3_600_000, errors),
    eventsQueueSize: wholeNumber(env, 'TSLINK_EVENTS_QUEUE', DEFAULT_SETTINGS.eventsQueueSize, 1, 1_000_000, errors),
    crashCooldownMs: wholeNumber(env, 'TSLINK_CRASH_COOLDOWN_MS', DEFAULT_SETTINGS.crashCooldownMs, 100, 86_400_000, errors),
    drainWaitMs: wholeNumber(env, 'TSLINK_DRAIN_WAIT_MS', DEFAULT_SETTINGS.drainWaitMs, 1_000, 10_000, errors),
    statusPollMs: wholeNumber(env, 'TSLINK_STATUS_POLL_MS', DEFAULT_SETTINGS.statusPollMs, 5_000, 3_600_000, errors),
    ...(envValue(env, 'TSLINK_HOST_DOCKER_RUN') ? { hostDockerRun: absolutePath(env, 'TSLINK_HOST_DOCKER_RUN', errors, '/host/run/docker') } : {}),
  };
  if (settings.eventsMinBackoffMs > settings.eventsMaxBackoffMs) {
    errors.push(`tslink: TSLINK_EVENTS_MIN_BACKOFF_MS=${settings.eventsMinBackoffMs} is more than TSLINK_EVENTS_MAX_BACKOFF_MS=${settings.eventsMaxBackoffMs}; the minimum must not exceed the maximum`);
  }
  return errors.length ? failed(scrubKey(errors, authKey, 'a plugin setting')) : { ok: true, settings };
}
