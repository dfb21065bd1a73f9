/**
 * The grammar of everything a user writes for tslink, in one place: container labels
 * (`--label tslink.*`), network options (`docker network create --opt tslink.*`) and the plugin's
 * settings (its environment). Pure functions, no I/O.
 *
 * Every error message starts with `tslink: `, names the label or option, quotes the value given
 * and says what would be valid, because Docker prints it verbatim to the person who typed it.
 * Parsers never stop at the first problem: they return all of them (`errors`), and `message`
 * joins them with `; `.
 *
 * Decisions worth knowing:
 * - Keys are ours when they start with `tslink.` in any letter case, so `Tslink.hostname` is
 *   reported as an unknown label instead of being ignored. Unknown `tslink.*` keys are errors.
 * - Surrounding whitespace in values is ignored, except in auth keys, which must have none.
 * - Hostnames and Service names are DNS names, so they are lowercased; tags keep their case.
 * - Auth keys are secrets: no message quotes them (they read `(hidden)`), text shaped like a
 *   Tailscale key (`tskey-…`) is hidden wherever a value is quoted, and unknown keys are named
 *   without their values (a typo such as `tslink.autkey` would otherwise print the key).
 * - `tun` (forward all traffic of a Tailscale Service to the container) takes no target, path or
 *   options, needs `tslink.service`, and must be the container's only `tslink.serve.*` rule:
 *   tailscale supports tun mode only for Services, and not next to other handlers.
 */

// ---------------------------------------------------------------------------------------------
// Types

export type Proto = 'http' | 'https' | 'tcp' | 'tls-terminated-tcp' | 'tun';
export const PROTOS: readonly Proto[] = ['http', 'https', 'tcp', 'tls-terminated-tcp', 'tun'];

export interface ServeTarget {
  /** `127.0.0.1` by default; `localhost`, another `127.x.x.x` address or `[::1]` (with brackets). */
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

export interface ContainerConfig {
  hostname: string;
  /** Where the hostname came from: the label, the container name, or the endpoint ID. */
  hostnameSource: 'label' | 'name' | 'endpoint';
  /** Deduplicated, in the order given; empty when the label is absent. */
  tags: string[];
  /** `svc:<name>`, lowercased. */
  service?: string;
  /** Sorted by port. */
  serve: ServeRule[];
  /** Serve the rules on the node's own name too; defaults to true, or false with a service. */
  direct: boolean;
}

export interface NetworkConfig {
  /** A secret. Absent when the plugin's TS_AUTHKEY is to be used. */
  authKey?: string;
  /** When set, every node on the network gets exactly these tags (see `effectiveTags`). */
  tags?: string[];
  loginServer?: string;
  ephemeral: boolean;
  mtu: number;
}

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

export interface Failed {
  ok: false;
  /** Each problem, a complete `tslink: ` message of its own. */
  errors: string[];
  /** All errors joined with `; `: what Docker shows. */
  message: string;
}

/** `{ ok: true, <key>: value }` or every problem found. */
export type Parsed<K extends string, T> = ({ ok: true } & { [P in K]: T }) | Failed;

const failed = (errors: string[]): Failed => ({ ok: false, errors, message: errors.join('; ') });

// ---------------------------------------------------------------------------------------------
// Tables of known keys

export const LABEL_PREFIX = 'tslink.';
export const SERVE_PREFIX = 'tslink.serve.';
export const KNOWN_LABELS: readonly string[] = ['tslink.hostname', 'tslink.tags', 'tslink.service', 'tslink.serve.<port>', 'tslink.direct'];

export const MTU_OPTION = 'com.docker.network.driver.mtu';
export const KNOWN_NETWORK_OPTIONS: readonly string[] = ['tslink.authkey', 'tslink.tags', 'tslink.loginserver', 'tslink.ephemeral'];

export const DEFAULT_MTU = 1500;
export const MIN_MTU = 68;
export const MAX_MTU = 65535;

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

/** Serve options: which protocols take them and how their value reads. */
const SERVE_OPTIONS = {
  'proxy-protocol': { protos: ['tcp', 'tls-terminated-tcp'], syntax: 'proxy-protocol=1|2' },
  'accept-app-caps': { protos: ['http', 'https'], syntax: 'accept-app-caps=<cap>[,<cap>]' },
} as const satisfies Record<string, { protos: readonly Proto[]; syntax: string }>;
type ServeOption = keyof typeof SERVE_OPTIONS;
const SERVE_OPTIONS_HELP = Object.values(SERVE_OPTIONS)
  .map((o) => `${o.syntax} (${o.protos.join(', ')})`)
  .join(' and ');

// ---------------------------------------------------------------------------------------------
// Showing values in messages

const HIDDEN = '(hidden)';
const MAX_SHOWN = 100;
/** Text shaped like a Tailscale key; hidden wherever a value is quoted. */
const KEY_SHAPED = /tskey-\S*/g;

/** A value as a message quotes it: JSON-quoted (so blanks and control characters show), key-shaped text hidden, cut when long. */
function show(value: string): string {
  const safe = value.replace(KEY_SHAPED, `tskey-${HIDDEN}`);
  return JSON.stringify(safe.length > MAX_SHOWN ? `${safe.slice(0, MAX_SHOWN)}…` : safe);
}

/** A key as a message names it: as is when plain, quoted otherwise. */
function showKey(key: string): string {
  return /^[\x21-\x7e]+$/.test(key) && !key.includes('tskey-') ? key : show(key);
}

/** A URL with any `user:password@` hidden. */
const showUrl = (value: string): string => show(value.replace(/\/\/[^/?#]*@/, `//${HIDDEN}@`));

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur.push(Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

/** ` (did you mean X?)` for a close known key, else nothing. */
function suggestion(key: string, known: readonly string[]): string {
  const k = key.toLowerCase();
  if (k.length > 64) return '';
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const d = editDistance(k, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best ? ` (did you mean ${best}?)` : '';
}

/** Any value as text, without trusting it to convert itself (Docker sends strings, but be safe). */
function textOf(raw: unknown): string {
  if (typeof raw === 'string') return raw;
  if (raw === null || raw === undefined || typeof raw === 'number' || typeof raw === 'boolean' || typeof raw === 'bigint') return String(raw);
  return `[${typeof raw}]`;
}

// ---------------------------------------------------------------------------------------------
// Shared value grammars

const DNS_LABEL_RULE = '1-63 letters, digits and hyphens, not starting or ending with a hyphen';

/** Why `s` is not a DNS label, or undefined when it is one. */
export function dnsLabelProblem(s: string): string | undefined {
  if (s === '') return 'it is empty';
  if (s.length > 63) return `it is ${s.length} characters long, the limit is 63`;
  const bad = /[^A-Za-z0-9-]/.exec(s);
  if (bad) return `${show(bad[0])} is not allowed`;
  if (s.startsWith('-') || s.endsWith('-')) return 'it starts or ends with a hyphen';
  return undefined;
}

export const isDnsLabel = (s: string): boolean => dnsLabelProblem(s) === undefined;

const TAGS_RULE = 'write comma-separated tag:<name> items, each name a letter followed by letters, digits or hyphens, e.g. tag:web,tag:prod';

/** Why one item of a tag list is not a tag, or undefined when it is one. */
function tagProblem(item: string): string | undefined {
  if (item === '') return 'there is an empty item (two commas in a row, or a comma at an end)';
  if (!item.startsWith('tag:')) return `${show(item)} does not start with tag:`;
  const name = item.slice('tag:'.length);
  if (name === '') return `${show(item)} has no name after tag:`;
  if (!/^[A-Za-z]/.test(name)) return `${show(item)} does not start its name with a letter`;
  const bad = /[^A-Za-z0-9-]/.exec(name);
  if (bad) return `${show(item)} contains ${show(bad[0])}, which a tag name cannot hold`;
  return undefined;
}

/** A comma-separated tag list: items trimmed, deduplicated in order; one problem per bad item. */
export function parseTagList(value: string): { tags: string[]; problems: string[] } {
  if (value.trim() === '') return { tags: [], problems: ['it is empty; give at least one tag, or leave it out'] };
  const tags: string[] = [];
  const problems: string[] = [];
  for (const item of value.split(',').map((t) => t.trim())) {
    const problem = tagProblem(item);
    if (problem) problems.push(`${problem}; ${TAGS_RULE}`);
    else if (!tags.includes(item)) tags.push(item);
  }
  return { tags, problems };
}

function parseBool(value: string): boolean | undefined {
  const v = value.trim().toLowerCase();
  return v === 'true' ? true : v === 'false' ? false : undefined;
}

/** A port: 1-65535, decimal, no sign or leading zeros. */
export function parsePort(text: string): number | undefined {
  if (!/^[1-9][0-9]{0,4}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 65535 ? n : undefined;
}

/** Reports problems about one key: `tslink: <kind> <key>=<value>: <problem>`. */
type Report = (problem: string) => void;

function reporter(errors: string[], kind: 'label' | 'option', key: string, shownValue: string): Report {
  return (problem) => errors.push(`tslink: ${kind} ${showKey(key)}=${shownValue}: ${problem}`);
}

// ---------------------------------------------------------------------------------------------
// Hostnames

/** Makes arbitrary text a DNS label: lowercase, other characters to `-`, runs of `-` collapsed, trimmed, cut to 63. */
function sanitizeLabel(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
}

const LAST_RESORT_HOSTNAME = 'tslink-node';

/**
 * The hostname of a container without `tslink.hostname`: its name made into a DNS label (the
 * leading `/` Docker puts on names removed), or, if nothing valid remains, the first 12
 * characters of the endpoint ID. Always a valid DNS label.
 */
export function deriveHostname(containerName: string, endpointId: string): { hostname: string; source: 'name' | 'endpoint' } {
  const fromName = sanitizeLabel(containerName.replace(/^\/+/, ''));
  if (fromName) return { hostname: fromName, source: 'name' };
  return { hostname: sanitizeLabel(endpointId.slice(0, 12)) || LAST_RESORT_HOSTNAME, source: 'endpoint' };
}

// ---------------------------------------------------------------------------------------------
// tslink.serve.<port> = <proto>[:<target>][/<path>][?<options>]

const LOOPBACK_RULE = "the target must be on the container's loopback: localhost, 127.0.0.1 (or another 127.x.x.x address) or [::1]";
const IPV4_OCTET = '(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])';
const LOOPBACK_V4 = new RegExp(`^127(?:\\.${IPV4_OCTET}){3}$`);
const PATH_CHARS = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/%]$/;
const APP_CAP = /^[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\/[A-Za-z0-9._/-]+$/;

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || LOOPBACK_V4.test(host);
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
  if (colon >= 0 && !isLoopbackHost(host)) {
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
  const caps: string[] = [];
  let ok = true;
  for (const cap of value.split(',').map((c) => c.trim())) {
    if (!APP_CAP.test(cap)) {
      report(`${cap === '' ? 'an empty item' : show(cap)} in accept-app-caps is not an app capability; write domain-qualified names like example.com/cap/name (letters, digits and .-_/), separated by commas`);
      ok = false;
    } else if (!caps.includes(cap)) caps.push(cap);
  }
  return ok ? caps : undefined;
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
function parseServeRule(port: number, rawValue: string, report: Report): ServeRule | undefined {
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

// ---------------------------------------------------------------------------------------------
// Container labels

interface LabelDraft {
  hostname?: string;
  tags: string[];
  service?: string;
  direct?: boolean;
  serve: ServeRule[];
  /** Serve labels seen, valid or not: a Service with only broken rules is reported once. */
  serveLabels: number;
}

type LabelParser = (value: string, draft: LabelDraft, report: Report) => void;

const LABELS: Record<string, LabelParser> = {
  'tslink.hostname': (value, draft, report) => {
    const v = value.trim();
    const problem = dnsLabelProblem(v);
    if (problem) report(`not a valid hostname: ${problem}; use a DNS label of ${DNS_LABEL_RULE}, e.g. web-1`);
    else draft.hostname = v.toLowerCase();
  },
  'tslink.tags': (value, draft, report) => {
    const { tags, problems } = parseTagList(value);
    problems.forEach(report);
    if (!problems.length) draft.tags = tags;
  },
  'tslink.service': (value, draft, report) => {
    const v = value.trim();
    const name = v.toLowerCase().startsWith('svc:') ? v.slice('svc:'.length) : undefined;
    const problem = name === undefined ? 'it does not start with svc:' : dnsLabelProblem(name);
    if (problem) report(`not a Service name: ${problem}; write svc:<name>, the name ${DNS_LABEL_RULE}, e.g. svc:web`);
    else draft.service = v.toLowerCase();
  },
  'tslink.direct': (value, draft, report) => {
    const b = parseBool(value);
    if (b === undefined) report('must be true or false');
    else draft.direct = b;
  },
};

function parseServeLabel(key: string, value: string, draft: LabelDraft, report: Report): void {
  draft.serveLabels++;
  const portText = key.slice(SERVE_PREFIX.length);
  const port = parsePort(portText);
  if (port === undefined) {
    report(`${show(portText)} is not a port; name the label tslink.serve.<port> with a port from 1 to 65535 (no leading zeros), e.g. tslink.serve.443=https:8080`);
    return;
  }
  const rule = parseServeRule(port, value, report);
  if (rule) draft.serve.push(rule);
}

function unknownLabel(key: string): string {
  const candidates = [...Object.keys(LABELS)];
  const lastDot = key.lastIndexOf('.');
  if (lastDot > LABEL_PREFIX.length) candidates.push(SERVE_PREFIX + key.slice(lastDot + 1));
  const hint = key.toLowerCase() === 'tslink.serve' ? ' (did you mean tslink.serve.<port>?)' : suggestion(key, candidates);
  return `tslink: unknown label ${showKey(key)}${hint}; the tslink labels are ${KNOWN_LABELS.join(', ')}`;
}

/** Rules about how the labels fit together, checked once each label is valid on its own. */
function checkCombination(draft: LabelDraft, errors: string[]): void {
  const serviceLabel = `label tslink.service=${show(draft.service ?? '')}`;
  if (draft.service && draft.serveLabels === 0) {
    errors.push(`tslink: ${serviceLabel} needs at least one tslink.serve.<port> label saying what the Service serves, e.g. tslink.serve.443=https:8080`);
  }
  const tun = draft.serve.filter((r) => r.proto === 'tun');
  if (tun.length && !draft.service) {
    errors.push(`tslink: label ${SERVE_PREFIX}${tun[0]?.port}="tun": tun forwards traffic only for a Tailscale Service; add tslink.service=svc:<name>`);
  }
  if (tun.length && draft.serveLabels > 1) {
    errors.push(`tslink: label ${SERVE_PREFIX}${tun[0]?.port}="tun" forwards all of the Service's traffic and cannot be combined with other tslink.serve.<port> labels; keep either the tun rule or the others`);
  }
  if (tun.length && draft.direct === true) {
    errors.push('tslink: label tslink.direct="true" has no effect with a tun rule, which serves only the Service; remove tslink.direct');
  }
  if (draft.direct === false && !draft.service && draft.serveLabels > 0) {
    errors.push('tslink: label tslink.direct="false" without tslink.service would serve nothing: the tslink.serve.<port> labels would be ignored; remove tslink.direct or add tslink.service=svc:<name>');
  }
}

/**
 * A container's configuration from all of its labels (labels not starting with `tslink.` are
 * ignored). `containerName` may carry Docker's leading `/`.
 */
export function parseContainerLabels(
  labels: Readonly<Record<string, string>>,
  ctx: { containerName: string; endpointId: string },
): Parsed<'config', ContainerConfig> {
  const errors: string[] = [];
  const draft: LabelDraft = { tags: [], serve: [], serveLabels: 0 };
  for (const key of Object.keys(labels).sort()) {
    if (!key.toLowerCase().startsWith(LABEL_PREFIX)) continue;
    const value = textOf(labels[key]);
    const report = reporter(errors, 'label', key, show(value));
    const parser = LABELS[key];
    if (parser) parser(value, draft, report);
    else if (key.startsWith(SERVE_PREFIX)) parseServeLabel(key, value, draft, report);
    else errors.push(unknownLabel(key));
  }
  checkCombination(draft, errors);
  if (errors.length) return failed(errors);
  const derived = draft.hostname === undefined ? deriveHostname(ctx.containerName, ctx.endpointId) : undefined;
  return {
    ok: true,
    config: {
      hostname: draft.hostname ?? derived?.hostname ?? LAST_RESORT_HOSTNAME,
      hostnameSource: derived?.source ?? 'label',
      tags: draft.tags,
      ...(draft.service ? { service: draft.service } : {}),
      serve: draft.serve.sort((a, b) => a.port - b.port),
      direct: draft.direct ?? draft.service === undefined,
    },
  };
}

/** The tags a node advertises: a network's `tslink.tags` overrides the container's own. */
export function effectiveTags(network: Pick<NetworkConfig, 'tags'>, container: Pick<ContainerConfig, 'tags'>): string[] {
  return [...(network.tags ?? container.tags)];
}

/** The container's tags that its network overrides and that the node therefore does not get (for a warning). */
export function overriddenTags(network: Pick<NetworkConfig, 'tags'>, container: Pick<ContainerConfig, 'tags'>): string[] {
  const net = network.tags;
  return net ? container.tags.filter((t) => !net.includes(t)) : [];
}

// ---------------------------------------------------------------------------------------------
// Network options

/** Why a `file:` key cannot work, per place a key is given. */
const FILE_KEY_WHY = {
  option:
    'the key must be given as the value itself: Docker hands the plugin only the text of the option, and the plugin cannot read files on the machine that runs docker network create',
  env: 'tslink reads no key files: the key must be the value itself (tslink hands it to tailscale through a root-only file of its own)',
} as const;

/** Why an auth key (network option or TS_AUTHKEY) is unusable, or undefined. Never quotes it. */
function authKeyProblem(value: string, where: keyof typeof FILE_KEY_WHY): string | undefined {
  if (value === '') return 'it is empty';
  if (/\s/.test(value)) return 'it contains whitespace; a Tailscale auth key is one word like tskey-auth-... (check for a stray space or line break from copy and paste)';
  if (value.toLowerCase().startsWith('file:')) return `it starts with file:, but ${FILE_KEY_WHY[where]}`;
  return undefined;
}

const NO_KEY_ERROR =
  'tslink: this network has no auth key: give one with `docker network create -d tslink --opt tslink.authkey=tskey-auth-... <network>`, ' +
  'or set a default for all networks with `docker plugin set tslink TS_AUTHKEY=tskey-auth-...` (for a legacy plugin, the TS_AUTHKEY environment variable of its process)';

type OptionParser = (value: string, config: NetworkConfig, report: Report) => void;

const NETWORK_OPTIONS: Record<string, OptionParser> = {
  'tslink.authkey': (value, config, report) => {
    const problem = authKeyProblem(value, 'option');
    if (problem) report(`${problem}; e.g. --opt tslink.authkey=tskey-auth-..., or leave the option out to use the plugin's TS_AUTHKEY`);
    else config.authKey = value;
  },
  'tslink.tags': (value, config, report) => {
    const { tags, problems } = parseTagList(value);
    problems.forEach(report);
    if (!problems.length) config.tags = tags;
  },
  'tslink.loginserver': (value, config, report) => {
    const v = value.trim();
    let url: URL | undefined;
    try {
      url = new URL(v);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.hostname === '') {
      report('not an http:// or https:// URL; give the control server URL, e.g. https://headscale.example.com');
    } else if (url.username !== '' || url.password !== '') {
      report('the URL contains credentials (user:password@); give the URL alone, e.g. https://headscale.example.com: nodes log in with the auth key');
    } else config.loginServer = v;
  },
  'tslink.ephemeral': (value, config, report) => {
    const b = parseBool(value);
    if (b === undefined) report('must be true or false');
    else config.ephemeral = b;
  },
};

function parseMtu(raw: unknown, report: Report): number | undefined {
  const text = typeof raw === 'number' || typeof raw === 'string' ? String(raw).trim() : '';
  const n = /^[0-9]{1,6}$/.test(text) ? Number(text) : NaN;
  if (n >= MIN_MTU && n <= MAX_MTU) return n;
  report(`must be a whole number from ${MIN_MTU} to ${MAX_MTU} (the default is ${DEFAULT_MTU})`);
  return undefined;
}

function showOptionValue(key: string, raw: unknown): string {
  if (key === 'tslink.authkey') return HIDDEN;
  if (key === 'tslink.loginserver') return showUrl(textOf(raw));
  return show(textOf(raw));
}

/**
 * Hides an auth key in every message, whatever other value happened to hold it. Keys shorter
 * than 8 characters are left alone: hiding them would mangle ordinary words of the messages.
 */
function scrubKey(errors: string[], key: unknown, where: string): string[] {
  if (typeof key !== 'string' || key.trim().length < 8) return errors;
  return errors.map((e) => {
    let out = e;
    for (const secret of new Set([key, key.trim()])) out = out.split(secret).join(HIDDEN);
    return out.includes(key.trim()) ? `tslink: ${where} is invalid, but its message would reveal the auth key; check the values given` : out;
  });
}

/**
 * A network's configuration from its `--opt` map (`com.docker.network.generic`), which also
 * holds `com.docker.network.driver.mtu` when given. Other non-`tslink.` options are ignored.
 * `envAuthKeyPresent`: the plugin has TS_AUTHKEY, so the network may go without a key.
 */
export function parseNetworkOptions(
  generic: Readonly<Record<string, unknown>> | null | undefined,
  ctx: { envAuthKeyPresent: boolean },
): Parsed<'config', NetworkConfig> {
  const options = generic ?? {};
  const errors: string[] = [];
  const config: NetworkConfig = { ephemeral: false, mtu: DEFAULT_MTU };
  for (const key of Object.keys(options).sort()) {
    const raw = options[key];
    const report = reporter(errors, 'option', key, showOptionValue(key, raw));
    if (key === MTU_OPTION) {
      const mtu = parseMtu(raw, report);
      if (mtu !== undefined) config.mtu = mtu;
      continue;
    }
    if (!key.toLowerCase().startsWith(LABEL_PREFIX)) continue;
    const parser = NETWORK_OPTIONS[key];
    if (!parser) errors.push(`tslink: unknown option ${showKey(key)}${suggestion(key, KNOWN_NETWORK_OPTIONS)}; the tslink options are ${KNOWN_NETWORK_OPTIONS.join(', ')} (and ${MTU_OPTION})`);
    else if (typeof raw !== 'string') report('must be text');
    else parser(raw, config, report);
  }
  if (!Object.hasOwn(options, 'tslink.authkey') && !ctx.envAuthKeyPresent) errors.push(NO_KEY_ERROR);
  return errors.length ? failed(scrubKey(errors, options['tslink.authkey'], 'a network option')) : { ok: true, config };
}

// ---------------------------------------------------------------------------------------------
// Plugin settings (environment)

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
