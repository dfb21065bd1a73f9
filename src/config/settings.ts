/**
 * The plugin's settings: its environment, as `docker plugin set` and a legacy install give it.
 * `SETTINGS` is the one table of them: the parser reads it, `tslink --help` prints it, and a test
 * holds config.json's `env` and the README's table to it.
 */
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
  crashCooldownMs: number;
  drainWaitMs: number;
  statusPollMs: number;
  hostDockerRun?: string;
  /** `host:port` for the operations listener's TCP side; off when unset. */
  metricsListen?: string;
  /** Tailscale's debug knobs for every tailscaled (e.g. a local tailnet's plain-HTTP DERP). */
  tailscaledEnv: Readonly<Record<string, string>>;
  /** Each container's tailscaled gets its own UDP port from this range; undefined: all use 41641. */
  wireguardPorts?: PortRange;
}

/** Host UDP ports, first to last, both included. */
export interface PortRange {
  first: number;
  last: number;
}

type Kind =
  | { type: 'secret' }
  | { type: 'path'; example: string }
  | { type: 'socket' }
  | { type: 'level' }
  | { type: 'listen' }
  | { type: 'daemonEnv' }
  | { type: 'portRange' }
  | { type: 'int'; min: number; max: number };

export interface SettingSpec {
  env: string;
  key: keyof Settings;
  kind: Kind;
  /** The value when unset, as text (undefined: unset means off or none). */
  default?: string;
  /** Whether a managed plugin takes it through `docker plugin set`. */
  settable: boolean;
  /** The value the managed plugin's manifest fixes, when it differs from the default. */
  managed?: string;
  description: string;
}

export const SETTINGS: readonly SettingSpec[] = [
  { env: 'TS_AUTHKEY', key: 'authKey', kind: { type: 'secret' }, settable: true, description: 'default auth key for networks without --opt tslink.authkey; never written to disk' },
  { env: 'TS_DATA_DIR', key: 'dataDir', kind: { type: 'path', example: '/var/lib/docker-plugins/tailscale' }, default: '/var/lib/docker-plugins/tailscale', settable: false, managed: '/data', description: 'state: networks, endpoints, node identities, logs, the operations socket' },
  { env: 'TS_PATH', key: 'tsPath', kind: { type: 'path', example: '/usr/local/bin' }, settable: true, description: 'directory holding tailscale and tailscaled (default: the bundled ones, then PATH)' },
  { env: 'TSLINK_SOCKET', key: 'socketPath', kind: { type: 'socket' }, default: '/run/docker/plugins/tslink.sock', settable: false, description: 'the plugin socket' },
  { env: 'LOG_LEVEL', key: 'logLevel', kind: { type: 'level' }, default: 'info', settable: true, description: 'fatal, error, warn, info, debug or trace; logs are JSON lines on stderr' },
  { env: 'DOCKER_SOCKET', key: 'dockerSocket', kind: { type: 'socket' }, default: '/var/run/docker.sock', settable: false, description: 'the Docker API (events, listings; never a container being started)' },
  { env: 'TSLINK_CRASH_COOLDOWN_MS', key: 'crashCooldownMs', kind: { type: 'int', min: 100, max: 86_400_000 }, default: '300000', settable: true, description: 'wait after a tailscaled crash loop (5 crashes in 30 s)' },
  { env: 'TSLINK_DRAIN_WAIT_MS', key: 'drainWaitMs', kind: { type: 'int', min: 1_000, max: 10_000 }, default: '2000', settable: true, description: 'how long a drained Service backend waits for control' },
  { env: 'TSLINK_STATUS_POLL_MS', key: 'statusPollMs', kind: { type: 'int', min: 5_000, max: 3_600_000 }, default: '30000', settable: true, description: 'steady-state tailscale status poll per node' },
  { env: 'TSLINK_EVENTS_QUEUE', key: 'eventsQueueSize', kind: { type: 'int', min: 1, max: 1_000_000 }, default: '1000', settable: true, description: 'bounded Docker event queue (overflow is dropped, counted, repaired)' },
  { env: 'TSLINK_EVENTS_MIN_BACKOFF_MS', key: 'eventsMinBackoffMs', kind: { type: 'int', min: 1, max: 600_000 }, default: '250', settable: true, description: 'shortest reconnect wait of the events stream (full jitter)' },
  { env: 'TSLINK_EVENTS_MAX_BACKOFF_MS', key: 'eventsMaxBackoffMs', kind: { type: 'int', min: 1, max: 3_600_000 }, default: '30000', settable: true, description: 'longest reconnect wait of the events stream' },
  { env: 'TSLINK_METRICS_LISTEN', key: 'metricsListen', kind: { type: 'listen' }, settable: true, description: 'host:port to serve /metrics, /healthz, /readyz and /v1/endpoints on TCP too (off by default; the unix socket in the data directory is always on); on TCP every path but /healthz needs Authorization: Bearer <token>, the token being the file ops-token in the data directory (made at start, mode 0600)' },
  { env: 'TSLINK_TAILSCALED_ENV', key: 'tailscaledEnv', kind: { type: 'daemonEnv' }, settable: true, description: "space-separated NAME=value knobs for every tailscaled, NAME being TS_DEBUG_*, TS_DISABLE_*, TS_ASSUME_NETWORK_UP_FOR_TEST or TS_NO_LOGS_NO_SUPPORT (e.g. TS_DEBUG_USE_DERP_HTTP=1 for a local control server's plain-HTTP DERP; TS_NO_LOGS_NO_SUPPORT=true: no log upload to Tailscale); nothing else reaches the daemon's environment" },
  { env: 'TSLINK_WIREGUARD_PORTS', key: 'wireguardPorts', kind: { type: 'portRange' }, default: '41642-41941', settable: true, description: "UDP ports for the containers' tailscaled, one each (first-last, at most 10,000), forwarded from the host's addresses to its container: peers on other hosts connect directly (open these ports between hosts); off: every tailscaled uses 41641, no forwards, peers behind NATs are relayed" },
  { env: 'TSLINK_HOST_DOCKER_RUN', key: 'hostDockerRun', kind: { type: 'path', example: '/host/run/docker' }, settable: false, managed: '/host/run/docker', description: "where Docker's exec root is mounted, when not at its own path" },
];

type Env = Readonly<Record<string, string | undefined>>;

/** Longest unix socket path (sun_path holds 108 bytes with the terminating NUL). */
const MAX_SOCKET_PATH = 107;
/** Tailscale's knobs tslink lets through: debug and disable switches and the log-upload opt-out, never a key. */
const DAEMON_ENV_NAME = /^TS_(?:DEBUG_[A-Z0-9_]{1,60}|DISABLE_[A-Z0-9_]{1,60}|ASSUME_NETWORK_UP_FOR_TEST|NO_LOGS_NO_SUPPORT)$/;
const DAEMON_ENV_VALUE = /^[A-Za-z0-9._:,/-]{0,256}$/;
const MAX_DAEMON_ENV = 32;

function parseDaemonEnv(v: string): { value: Record<string, string> } | { problem: string } {
  if (v.length > 4096) return { problem: `is ${v.length} characters long; the limit is 4096` };
  const words = v.split(/[ \t\n]+/).filter(Boolean);
  if (words.length > MAX_DAEMON_ENV) return { problem: `has ${words.length} entries; the limit is ${MAX_DAEMON_ENV}` };
  const out: Record<string, string> = {};
  for (const w of words) {
    const eq = w.indexOf('=');
    const name = eq < 0 ? w : w.slice(0, eq);
    const value = eq < 0 ? '' : w.slice(eq + 1);
    if (eq < 0 || !DAEMON_ENV_NAME.test(name)) return { problem: `${show(w)} is not NAME=value with NAME one of TS_DEBUG_*, TS_DISABLE_*, TS_ASSUME_NETWORK_UP_FOR_TEST, TS_NO_LOGS_NO_SUPPORT, e.g. TS_DEBUG_USE_DERP_HTTP=1` };
    if (!DAEMON_ENV_VALUE.test(value)) return { problem: `${show(w)}: the value may hold only letters, digits and . _ : , / - (at most 256)` };
    out[name] = value;
  }
  return { value: out };
}

const LISTEN = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]{1,253}):(\d{1,5})$/;

/** One setting's value from its text, or its problem. */
function parsePortRange(v: string): { value: PortRange | undefined } | { problem: string } {
  const text = v.trim();
  if (text === 'off') return { value: undefined };
  const m = /^([0-9]{4,5})-([0-9]{4,5})$/.exec(text);
  const first = Number(m?.[1]);
  const last = Number(m?.[2]);
  if (!m || first < 1024 || last > 65535 || first > last || last - first >= 10_000) {
    return { problem: `${show(v)} is not a range of UDP ports first-last from 1024 to 65535, at most 10,000 ports, e.g. 41642-41941 (or off)` };
  }
  if (first <= 41641 && last >= 41641) return { problem: `${show(v)} includes 41641, which a tailscaled on the host itself uses; e.g. 41642-41941` };
  return { value: { first, last } };
}

function parseOne(spec: SettingSpec, v: string): { value: string | number | Record<string, string> | PortRange | undefined } | { problem: string } {
  const k = spec.kind;
  switch (k.type) {
    case 'secret': {
      const p = authKeyProblem(v, 'env');
      return p ? { problem: `${HIDDEN}: ${p}; set it to the key itself, e.g. tskey-auth-...` } : { value: v };
    }
    case 'path':
      return v.startsWith('/') ? { value: v } : { problem: `${show(v)} must be an absolute path, e.g. ${k.example}` };
    case 'socket':
      if (!v.startsWith('/')) return { problem: `${show(v)} must be an absolute path, e.g. ${spec.default}` };
      return Buffer.byteLength(v) > MAX_SOCKET_PATH ? { problem: `${show(v)} is too long for a unix socket path (${Buffer.byteLength(v)} bytes, the limit is ${MAX_SOCKET_PATH})` } : { value: v };
    case 'level': {
      const level = v.trim().toLowerCase();
      return (LOG_LEVELS as readonly string[]).includes(level) ? { value: level } : { problem: `${show(v)} is not a log level; use one of ${LOG_LEVELS.join(', ')} (the default is ${spec.default})` };
    }
    case 'listen': {
      const m = LISTEN.exec(v.trim());
      return m && Number(m[1]) >= 1 && Number(m[1]) <= 65535 ? { value: v.trim() } : { problem: `${show(v)} is not host:port; e.g. 127.0.0.1:9464` };
    }
    case 'daemonEnv':
      return parseDaemonEnv(v);
    case 'portRange':
      return parsePortRange(v);
    case 'int': {
      const n = /^[0-9]{1,10}$/.test(v.trim()) ? Number(v.trim()) : NaN;
      return n >= k.min && n <= k.max ? { value: n } : { problem: `${show(v)} must be a whole number from ${k.min} to ${k.max} (the default is ${spec.default})` };
    }
  }
}

/** The plugin's settings from its environment, by the table. Empty values count as unset. */
export function parseSettings(env: Env): Parsed<'settings', Settings> {
  const errors: string[] = [];
  const out: Record<string, string | number | Record<string, string> | PortRange | undefined> = {};
  for (const spec of SETTINGS) {
    const raw = env[spec.env] === '' ? undefined : env[spec.env];
    const text = raw ?? spec.default;
    if (text === undefined) continue;
    const r = parseOne(spec, text);
    if ('problem' in r) errors.push(`tslink: ${spec.env}=${r.problem}`);
    else if (r.value !== undefined) out[spec.key] = r.value;
  }
  out['tailscaledEnv'] ??= {};
  const settings = out as unknown as Settings;
  if (settings.eventsMinBackoffMs > settings.eventsMaxBackoffMs) {
    errors.push(`tslink: TSLINK_EVENTS_MIN_BACKOFF_MS=${settings.eventsMinBackoffMs} is more than TSLINK_EVENTS_MAX_BACKOFF_MS=${settings.eventsMaxBackoffMs}; the minimum must not exceed the maximum`);
  }
  return errors.length ? failed(scrubKey(errors, env['TS_AUTHKEY'], 'a plugin setting')) : { ok: true, settings };
}

/** The settings as `tslink --help` lists them. */
export function settingsUsage(): string {
  const width = Math.max(...SETTINGS.map((s) => s.env.length));
  return SETTINGS.map((s) => `  ${s.env.padEnd(width)}  ${s.description}${s.default !== undefined ? ` (default ${s.default})` : ''}`).join('\n');
}
