/**
 * `tslink.serve.<port> = <proto>[:<target>][/<path>][?<options>]`. `tun` (forward all traffic of a
 * Tailscale Service to the container) takes no target, path or options, needs `tslink.service`,
 * and must be the container's only `tslink.serve.*` rule: tailscale supports tun mode only for
 * Services, and not next to other handlers.
 */
import { type Report, show } from './messages.js';
import { parsePort } from './values.js';

export type Proto = 'http' | 'https' | 'tcp' | 'tls-terminated-tcp' | 'tun';
export const PROTOS: readonly Proto[] = ['http', 'https', 'tcp', 'tls-terminated-tcp', 'tun'];

export interface ServeTarget {
  /** `127.0.0.1` by default; `localhost` or another `127.x.x.x` address (never IPv6: see IPV6_TARGET). */
  host: string;
  port: number;
}

/** One `tslink.serve.<port>` label. */
export interface ServeRule {
  /** The port served on the tailnet (the label's port). */
  port: number;
  proto: Proto;
  /** Where the traffic goes inside the container. For `tun` it is unused and set to 127.0.0.1:<port>. */
  target: ServeTarget;
  /** Mount point, http/https only; starts with `/`. */
  path?: string;
  /** tcp/tls-terminated-tcp only. */
  proxyProtocol?: 1 | 2;
  /** http/https only; deduplicated, in the order given. */
  acceptAppCaps?: string[];
}


/** Serve options: which protocols take them and how their value reads. */
const SERVE_OPTIONS = {
  'proxy-protocol': { protos: ['tcp', 'tls-terminated-tcp'], syntax: 'proxy-protocol=1|2' },
  'accept-app-caps': { protos: ['http', 'https'], syntax: 'accept-app-caps=<cap>[,<cap>]' },
} as const satisfies Record<string, { protos: readonly Proto[]; syntax: string }>;
type ServeOption = keyof typeof SERVE_OPTIONS;
const SERVE_OPTIONS_HELP = Object.values(SERVE_OPTIONS)
  .map((o) => `${o.syntax} (${o.protos.join(', ')})`)
  .join(' and ');


const LOOPBACK_RULE = "the target must be on the container's loopback: localhost or 127.0.0.1 (or another 127.x.x.x address)";
// Tailscale's serve rebuilds a target as host:port without IPv6 brackets (ipn/serve.go
// ExpandProxyTargetValue at 1.102.5), so it would dial "::1:port" and fail every connection.
const IPV6_TARGET = "Tailscale's serve cannot reach an IPv6 target (it drops the brackets and dials ::1:<port>, which fails); make the app listen on 127.0.0.1 and give 127.0.0.1:<port>";
const IPV4_OCTET = '(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])';
const LOOPBACK_V4 = new RegExp(`^127(?:\\.${IPV4_OCTET}){3}$`);
const PATH_CHARS = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/%]$/;
// The app capability syntax Tailscale's serve accepts: a domain, then a name of letters, digits, - and /.
const APP_CAP = /^(?:[\p{L}\p{N}-]+\.)+[\p{L}\p{N}-]+\/[\p{L}\p{N}\-/]+$/u;

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || LOOPBACK_V4.test(host);
}

/** The pieces of a serve value, split on the first `?`, then the first `/`, then the first `:`. */
function splitServeValue(value: string): { proto: string; target?: string; path?: string; query?: string } {
  const q = value.indexOf('?');
  const head = q < 0 ? value : value.slice(0, q);
  const query = q < 0 ? undefined : value.slice(q + 1);
  const slash = head.indexOf('/');
  const main = slash < 0 ? head : head.slice(0, slash);
  const path = slash < 0 ? undefined : head.slice(slash);
  const colon = main.indexOf(':');
  return {
    proto: (colon < 0 ? main : main.slice(0, colon)).toLowerCase(),
    ...(colon < 0 ? {} : { target: main.slice(colon + 1) }),
    ...(path === undefined ? {} : { path }),
    ...(query === undefined ? {} : { query }),
  };
}

function parseTarget(text: string, labelPort: number, report: Report): ServeTarget | undefined {
  if (text === '') {
    report(`the target after ":" is empty; give a port or <host>:<port>, or leave out ":" to use port ${labelPort}`);
    return undefined;
  }
  // `[::1]:80` splits after the bracket; everything else at the last colon.
  const bracket = text.startsWith('[') ? text.indexOf(']') + 1 : 0;
  const colon = bracket > 0 ? (text.length === bracket ? bracket : text.indexOf(':', bracket)) : text.lastIndexOf(':');
  const host = colon < 0 ? '127.0.0.1' : text.slice(0, colon).toLowerCase();
  const portText = colon < 0 ? text : text.slice(colon + 1);
  const port = parsePort(portText);
  let ok = true;
  if (colon >= 0 && host.startsWith('[')) {
    report(`${show(host)}: ${IPV6_TARGET}`);
    ok = false;
  } else if (colon >= 0 && !isLoopbackHost(host)) {
    report(`${show(host)} is not the container's loopback; ${LOOPBACK_RULE}`);
    ok = false;
  }
  if (port === undefined) {
    report(`the target port ${show(portText)} is not a port; use 1-65535, e.g. 8080 or 127.0.0.1:8080`);
    ok = false;
  }
  return ok && port !== undefined ? { host, port } : undefined;
}

function parsePath(path: string, report: Report): string | undefined {
  for (let i = 0; i < path.length; i++) {
    const c = path.charAt(i);
    const escape = c === '%' && /^%[0-9A-Fa-f]{2}/.test(path.slice(i));
    if (!PATH_CHARS.test(c) || (c === '%' && !escape)) {
      report(`the path contains ${show(c === '%' ? path.slice(i, i + 3) : c)}, which a URL path cannot hold; use letters, digits, -._~!$&'()*+,;=:@/ and %XX escapes`);
      return undefined;
    }
  }
  if (path.split('/').some((seg) => seg === '.' || seg === '..')) {
    report('the path contains a "." or ".." segment; write the path as it should appear, e.g. /api');
    return undefined;
  }
  return path;
}

function parseAppCaps(value: string, report: Report): string[] | undefined {
  const caps = new Set<string>();
  let ok = true;
  for (const cap of value.split(',').map((c) => c.trim())) {
    if (!APP_CAP.test(cap)) {
      report(`${cap === '' ? 'an empty item' : show(cap)} in accept-app-caps is not an app capability; write domain-qualified names like example.com/cap/name (a domain, then letters, digits, hyphens and slashes), separated by commas`);
      ok = false;
    } else caps.add(cap);
  }
  return ok ? [...caps] : undefined;
}

/** Applies `?k=v&k=v` to the rule; false when any option is wrong. */
function applyServeOptions(query: string, rule: ServeRule, report: Report): boolean {
  if (query === '') {
    report('nothing follows "?"; give options as key=value joined by &, or remove the "?"');
    return false;
  }
  let ok = true;
  const seen = new Set<string>();
  for (const item of query.split('&')) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    const value = eq < 0 ? '' : item.slice(eq + 1);
    const bad = (problem: string): void => {
      report(problem);
      ok = false;
    };
    if (!Object.hasOwn(SERVE_OPTIONS, key)) {
      bad(`${show(item)} is not an option; the options are ${SERVE_OPTIONS_HELP}, joined by &`);
      continue;
    }
    const option = key as ServeOption;
    const spec = SERVE_OPTIONS[option];
    if (seen.has(option)) bad(`${option} is given more than once`);
    else if (!(spec.protos as readonly Proto[]).includes(rule.proto)) bad(`${option} works only with ${spec.protos.join(' and ')}, not ${rule.proto}`);
    else if (option === 'proxy-protocol') {
      if (value === '1' || value === '2') rule.proxyProtocol = Number(value) as 1 | 2;
      else bad(`proxy-protocol must be 1 or 2, not ${show(value)}`);
    } else {
      const caps = parseAppCaps(value, bad);
      if (caps) rule.acceptAppCaps = caps;
    }
    seen.add(option);
  }
  return ok;
}

/** One serve label's value for the given (already valid) port; undefined after reporting problems. */
export function parseServeRule(port: number, rawValue: string, report: Report): ServeRule | undefined {
  const parts = splitServeValue(rawValue.trim());
  if (parts.path?.startsWith('//') && (parts.target === '' || parts.target?.endsWith(':'))) {
    report('write the target as <port> or <host>:<port>, without a scheme such as http://; e.g. https:8080 or tcp:127.0.0.1:5432');
    return undefined;
  }
  if (!(PROTOS as readonly string[]).includes(parts.proto)) {
    report(`${parts.proto === '' ? 'the protocol is missing' : `${show(parts.proto)} is not a protocol`}; use one of ${PROTOS.join(', ')}, e.g. https:8080`);
    return undefined;
  }
  const proto = parts.proto as Proto;
  const rule: ServeRule = { port, proto, target: { host: '127.0.0.1', port } };
  if (proto === 'tun') {
    if (parts.target === undefined && parts.path === undefined && parts.query === undefined) return rule;
    report(`tun takes no target, path or options (it forwards all of the Service's traffic to the container); write just tun`);
    return undefined;
  }
  let ok = true;
  if (parts.target !== undefined) {
    const target = parseTarget(parts.target, port, report);
    if (target) rule.target = target;
    else ok = false;
  }
  if (parts.path !== undefined) {
    if (proto !== 'http' && proto !== 'https') {
      report(`a path (${show(parts.path)}) works only with http and https, not ${proto}; remove it`);
      ok = false;
    } else {
      const path = parsePath(parts.path, report);
      if (path !== undefined) rule.path = path;
      else ok = false;
    }
  }
  if (parts.query !== undefined && !applyServeOptions(parts.query, rule, report)) ok = false;
  return ok ? rule : undefined;
}

/** The label value that parses back to `rule` (e.g. for status output and tests). */
export function formatServeRule(rule: ServeRule): string {
  if (rule.proto === 'tun') return 'tun';
  const { host, port } = rule.target;
  let out = rule.proto + (host === '127.0.0.1' ? (port === rule.port ? '' : `:${port}`) : `:${host}:${port}`);
  if (rule.path !== undefined) out += rule.path;
  const options: string[] = [];
  if (rule.proxyProtocol !== undefined) options.push(`proxy-protocol=${rule.proxyProtocol}`);
  if (rule.acceptAppCaps?.length) options.push(`accept-app-caps=${rule.acceptAppCaps.join(',')}`);
  return options.length ? `${out}?${options.join('&')}` : out;
}

