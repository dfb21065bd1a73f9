/**
 * Everything users write, in one place: container labels, network options and plugin settings.
 * Pure functions; every error starts with `tslink:`, names the label or option, the value given
 * and what would be valid, because Docker prints it verbatim to the person who typed it.
 */

export type Proto = 'http' | 'https' | 'tcp' | 'tls-terminated-tcp' | 'tun';
export const PROTOS: readonly Proto[] = ['http', 'https', 'tcp', 'tls-terminated-tcp', 'tun'];

export interface ServeRule {
  port: number;
  proto: Proto;
  target: { host: string; port: number };
  path?: string;
  proxyProtocol?: 1 | 2;
  acceptAppCaps?: string[];
}

export interface ContainerConfig {
  hostname: string;
  hostnameSource: 'label' | 'name' | 'endpoint';
  tags: string[];
  service?: string;
  serve: ServeRule[];
  direct: boolean;
}

export interface NetworkConfig {
  authKey?: string;
  tags?: string[];
  loginServer?: string;
  ephemeral: boolean;
  mtu: number;
}

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

export interface Settings {
  authKey?: string;
  dataDir: string;
  tsPath?: string;
  logLevel: LogLevel;
  socketPath: string;
  dockerSocket: string;
  eventsMinBackoffMs: number;
  eventsMaxBackoffMs: number;
  eventsQueueSize: number;
}

export type Parsed<K extends string, T> = ({ ok: true } & { [P in K]: T }) | { ok: false; errors: string[]; message: string };

const fail = <K extends string, T>(errors: string[]): Parsed<K, T> => ({ ok: false, errors, message: errors.join('; ') });

// ---------------------------------------------------------------------------------------------
// Shared pieces

const DNS_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const TAG = /^tag:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/;
const show = (v: string): string => JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);

export const isDnsLabel = (s: string): boolean => DNS_LABEL.test(s);

function parseTags(where: string, value: string, errors: string[]): string[] {
  const out: string[] = [];
  const items = value.split(',').map((t) => t.trim());
  for (const t of items) {
    if (!TAG.test(t)) {
      errors.push(`tslink: ${where}=${show(value)}: ${t === '' ? 'an empty item' : show(t)} is not a tag; write tags as tag:<name> (letters, digits, hyphens), separated by commas, e.g. tag:web,tag:prod`);
      continue;
    }
    if (!out.includes(t)) out.push(t);
  }
  return out;
}

function parseBool(where: string, value: string, errors: string[]): boolean | undefined {
  const v = value.trim().toLowerCase();
  if (v === 'true') return true;
  if (v === 'false') return false;
  errors.push(`tslink: ${where}=${show(value)} must be true or false`);
  return undefined;
}

function parsePort(s: string): number | undefined {
  if (!/^[1-9][0-9]{0,4}$/.test(s)) return undefined;
  const n = Number(s);
  return n <= 65535 ? n : undefined;
}

// ---------------------------------------------------------------------------------------------
// Container labels

export const KNOWN_LABELS = ['tslink.hostname', 'tslink.tags', 'tslink.service', 'tslink.serve.<port>', 'tslink.direct'];

/** The container name made into a DNS label; the endpoint ID's first 12 characters if none remains. */
export function deriveHostname(containerName: string, endpointId: string): { hostname: string; source: 'name' | 'endpoint' } {
  const h = containerName
    .replace(/^\/+/, '')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/g, '');
  if (h && DNS_LABEL.test(h)) return { hostname: h, source: 'name' };
  return { hostname: endpointId.slice(0, 12).toLowerCase(), source: 'endpoint' };
}

const LOOPBACK_HOST = /^(localhost|127(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}|\[::1\])$/;
const PATH_OK = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*$/;
const CAP = /^[A-Za-z0-9][A-Za-z0-9._\-/]*$/;

function parseServe(label: string, portText: string, value: string, errors: string[]): ServeRule | undefined {
  const port = parsePort(portText);
  const before = errors.length;
  if (port === undefined) errors.push(`tslink: label ${label}: ${show(portText)} is not a port; use tslink.serve.<1-65535>, e.g. tslink.serve.443=https:8080`);
  const m = /^([^:/?]*)(?::([^/?]*))?(\/[^?]*)?(?:\?(.*))?$/.exec(value.trim());
  if (!m) {
    errors.push(`tslink: label ${label}=${show(value)} is not <proto>[:<target>][/<path>][?<options>]`);
    return undefined;
  }
  const [, protoText = '', targetText, path, query] = m;
  if (!PROTOS.includes(protoText as Proto)) {
    errors.push(`tslink: label ${label}=${show(value)}: ${show(protoText)} is not a protocol; use one of ${PROTOS.join(', ')}`);
    return undefined;
  }
  const proto = protoText as Proto;
  const rule: ServeRule = { port: port ?? 0, proto, target: { host: '127.0.0.1', port: port ?? 0 } };
  if (proto === 'tun') {
    if (targetText !== undefined || path !== undefined || query !== undefined) {
      errors.push(`tslink: label ${label}=${show(value)}: tun forwards all traffic to the container and takes no target, path or options; write ${label}=tun`);
    }
  } else if (targetText !== undefined) {
    const tp = parsePort(targetText);
    if (tp !== undefined) rule.target.port = tp;
    else {
      const hm = /^(.*):([^:]*)$/.exec(targetText);
      const hp = hm ? parsePort(hm[2] ?? '') : undefined;
      if (!hm || hp === undefined || !LOOPBACK_HOST.test(hm[1] ?? '')) {
        errors.push(`tslink: label ${label}=${show(value)}: target ${show(targetText)} must be a port (1-65535) or host:port on the container's loopback (localhost, 127.x.x.x or [::1])`);
      } else {
        rule.target = { host: hm[1] ?? '127.0.0.1', port: hp };
      }
    }
  }
  if (path !== undefined) {
    if (proto !== 'http' && proto !== 'https') {
      errors.push(`tslink: label ${label}=${show(value)}: a path (${show(path)}) only works with http or https, not ${proto}`);
    } else if (!PATH_OK.test(path)) {
      errors.push(`tslink: label ${label}=${show(value)}: path ${show(path)} has characters a URL path cannot hold`);
    } else rule.path = path;
  }
  if (query !== undefined && proto !== 'tun') {
    for (const opt of query.split('&')) {
      const [k = '', v = ''] = opt.split('=', 2);
      if (k === 'proxy-protocol') {
        if (proto !== 'tcp' && proto !== 'tls-terminated-tcp') errors.push(`tslink: label ${label}=${show(value)}: proxy-protocol only works with tcp or tls-terminated-tcp, not ${proto}`);
        else if (v !== '1' && v !== '2') errors.push(`tslink: label ${label}=${show(value)}: proxy-protocol must be 1 or 2, not ${show(v)}`);
        else rule.proxyProtocol = Number(v) as 1 | 2;
      } else if (k === 'accept-app-caps') {
        const caps = v.split(',');
        if (proto !== 'http' && proto !== 'https') errors.push(`tslink: label ${label}=${show(value)}: accept-app-caps only works with http or https, not ${proto}`);
        else if (caps.some((c) => !CAP.test(c))) errors.push(`tslink: label ${label}=${show(value)}: accept-app-caps must be a comma-separated list of capability names like example.com/cap/name`);
        else rule.acceptAppCaps = [...new Set(caps)];
      } else {
        errors.push(`tslink: label ${label}=${show(value)}: unknown option ${show(opt)}; options are proxy-protocol=1|2 (tcp, tls-terminated-tcp) and accept-app-caps=<cap>[,<cap>] (http, https)`);
      }
    }
  }
  return errors.length === before ? rule : undefined;
}

export function parseContainerLabels(
  labels: Record<string, string>,
  ctx: { containerName: string; endpointId: string },
): Parsed<'config', ContainerConfig> {
  const errors: string[] = [];
  let hostname: string | undefined;
  let tags: string[] = [];
  let service: string | undefined;
  let direct: boolean | undefined;
  const serve: ServeRule[] = [];
  for (const [key, value] of Object.entries(labels)) {
    if (!key.startsWith('tslink.')) continue;
    if (key === 'tslink.hostname') {
      if (DNS_LABEL.test(value)) hostname = value.toLowerCase();
      else errors.push(`tslink: label tslink.hostname=${show(value)} is not a valid hostname; use 1-63 letters, digits or hyphens, not starting or ending with a hyphen`);
    } else if (key === 'tslink.tags') {
      tags = parseTags('label tslink.tags', value, errors);
    } else if (key === 'tslink.service') {
      const m = /^svc:(.*)$/.exec(value);
      if (m && DNS_LABEL.test(m[1] ?? '')) service = value.toLowerCase();
      else errors.push(`tslink: label tslink.service=${show(value)} is not a Service name; write svc:<name> with a DNS label name, e.g. svc:web`);
    } else if (key === 'tslink.direct') {
      direct = parseBool('label tslink.direct', value, errors);
    } else if (key.startsWith('tslink.serve.')) {
      const rule = parseServe(key, key.slice('tslink.serve.'.length), value, errors);
      if (rule) serve.push(rule);
    } else {
      errors.push(`tslink: unknown label ${key}; the tslink labels are ${KNOWN_LABELS.join(', ')}`);
    }
  }
  if (service && serve.length === 0 && !errors.some((e) => e.includes('tslink.serve.'))) {
    errors.push(`tslink: label tslink.service=${show(service)} needs at least one tslink.serve.<port> label saying what the Service serves, e.g. tslink.serve.443=https:8080`);
  }
  if (errors.length) return fail(errors);
  const derived = hostname ? undefined : deriveHostname(ctx.containerName, ctx.endpointId);
  serve.sort((a, b) => a.port - b.port);
  return {
    ok: true,
    config: {
      hostname: hostname ?? derived!.hostname,
      hostnameSource: hostname ? 'label' : derived!.source,
      tags,
      ...(service ? { service } : {}),
      serve,
      direct: direct ?? service === undefined,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Network options

export const MTU_OPTION = 'com.docker.network.driver.mtu';
export const KNOWN_NETWORK_OPTIONS = ['tslink.authkey', 'tslink.tags', 'tslink.loginserver', 'tslink.ephemeral'];

export function parseNetworkOptions(
  generic: Record<string, unknown>,
  ctx: { envAuthKeyPresent: boolean },
): Parsed<'config', NetworkConfig> {
  const errors: string[] = [];
  const cfg: NetworkConfig = { ephemeral: false, mtu: 1500 };
  for (const [key, raw] of Object.entries(generic ?? {})) {
    const value = typeof raw === 'string' ? raw : String(raw);
    if (key === MTU_OPTION) {
      const n = /^[0-9]{1,5}$/.test(value.trim()) ? Number(value.trim()) : NaN;
      if (n >= 68 && n <= 65535) cfg.mtu = n;
      else errors.push(`tslink: option ${MTU_OPTION}=${show(value)} must be a whole number from 68 to 65535`);
      continue;
    }
    if (!key.startsWith('tslink.')) continue;
    switch (key) {
      case 'tslink.authkey':
        // The value is a secret: no message ever quotes it.
        if (value === '' || /\s/.test(value)) errors.push('tslink: option tslink.authkey=(hidden) must be a non-empty key without spaces, e.g. tskey-auth-...');
        else if (value.startsWith('file:')) errors.push('tslink: option tslink.authkey=(hidden) must be the key itself, not a file: reference (the plugin cannot read files on your machine)');
        else cfg.authKey = value;
        break;
      case 'tslink.tags':
        cfg.tags = parseTags('option tslink.tags', value, errors);
        break;
      case 'tslink.loginserver': {
        let url: URL | undefined;
        try {
          url = new URL(value);
        } catch {
          url = undefined;
        }
        if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || !url.hostname) {
          errors.push(`tslink: option tslink.loginserver=${show(value)} must be an http:// or https:// URL, e.g. https://headscale.example.com`);
        } else if (url.username || url.password) {
          errors.push('tslink: option tslink.loginserver must not contain credentials; give the URL alone');
        } else cfg.loginServer = value.replace(/\/+$/, '');
        break;
      }
      case 'tslink.ephemeral': {
        const b = parseBool('option tslink.ephemeral', value, errors);
        if (b !== undefined) cfg.ephemeral = b;
        break;
      }
      default:
        errors.push(`tslink: unknown option ${key}; the tslink options are ${KNOWN_NETWORK_OPTIONS.join(', ')} (and ${MTU_OPTION})`);
    }
  }
  if (!cfg.authKey && !ctx.envAuthKeyPresent && !errors.some((e) => e.includes('tslink.authkey'))) {
    errors.push(
      'tslink: no auth key for this network: give one with `docker network create -d tslink --opt tslink.authkey=tskey-auth-...`, or set a default for every network with `docker plugin set tslink TS_AUTHKEY=tskey-auth-...` (legacy plugin: the TS_AUTHKEY environment variable)',
    );
  }
  return errors.length ? fail(errors) : { ok: true, config: cfg };
}

// ---------------------------------------------------------------------------------------------
// Plugin settings

const LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

function intSetting(env: NodeJS.ProcessEnv, name: string, def: number, min: number, max: number, errors: string[]): number {
  const v = env[name];
  if (v === undefined || v === '') return def;
  const n = /^[0-9]+$/.test(v) ? Number(v) : NaN;
  if (n >= min && n <= max) return n;
  errors.push(`tslink: ${name}=${show(v)} must be a whole number from ${min} to ${max}`);
  return def;
}

export function parseSettings(env: NodeJS.ProcessEnv): Parsed<'settings', Settings> {
  const errors: string[] = [];
  const get = (k: string): string | undefined => (env[k] === '' ? undefined : env[k]);
  const abs = (k: string, def?: string): string | undefined => {
    const v = get(k) ?? def;
    if (v !== undefined && !v.startsWith('/')) errors.push(`tslink: ${k}=${show(v)} must be an absolute path`);
    return v;
  };
  const authKey = get('TS_AUTHKEY');
  if (authKey !== undefined && /\s/.test(authKey.trim())) errors.push('tslink: TS_AUTHKEY=(hidden) must be a key without spaces');
  const level = (get('LOG_LEVEL') ?? 'info').toLowerCase();
  if (!LEVELS.includes(level as LogLevel)) errors.push(`tslink: LOG_LEVEL=${show(level)} must be one of ${LEVELS.join(', ')}`);
  const settings: Settings = {
    ...(authKey ? { authKey: authKey.trim() } : {}),
    dataDir: abs('TS_DATA_DIR', '/var/lib/docker-plugins/tailscale')!,
    ...(get('TS_PATH') ? { tsPath: abs('TS_PATH') } : {}),
    logLevel: level as LogLevel,
    socketPath: abs('TSLINK_SOCKET', '/run/docker/plugins/tslink.sock')!,
    dockerSocket: abs('DOCKER_SOCKET', '/var/run/docker.sock')!,
    eventsMinBackoffMs: intSetting(env, 'TSLINK_EVENTS_MIN_BACKOFF_MS', 250, 1, 600_000, errors),
    eventsMaxBackoffMs: intSetting(env, 'TSLINK_EVENTS_MAX_BACKOFF_MS', 30_000, 1, 3_600_000, errors),
    eventsQueueSize: intSetting(env, 'TSLINK_EVENTS_QUEUE', 1000, 1, 1_000_000, errors),
  };
  if (settings.eventsMinBackoffMs > settings.eventsMaxBackoffMs) errors.push('tslink: TSLINK_EVENTS_MIN_BACKOFF_MS must not exceed TSLINK_EVENTS_MAX_BACKOFF_MS');
  return errors.length ? fail(errors) : { ok: true, settings };
}
