/**
 * Container labels (`--label tslink.*`). Keys are ours when they start with `tslink.` in any
 * letter case, so `Tslink.hostname` is reported as an unknown label instead of being ignored.
 * Unknown `tslink.*` keys are errors. Surrounding whitespace in values is ignored. Hostnames and
 * Service names are DNS names, so they are lowercased; tags keep their case.
 */
import { type Parsed, type Report, failed, reporter, show, showKey, suggestion, textOf } from './messages.js';
import { type NetworkConfig } from './network-options.js';
import { ROUTING_KEYS, ROUTING_PARSERS, type Routing, containerRoutingProblems, givenRouting } from './routing.js';
import { type ServeRule, parseServeRule } from './serve.js';
import { FEATURE_SINCE, SUPPORTED_TAILSCALE, atLeast, type Feature } from './tailscale-features.js';
import { expandTemplate, swarmTask, taskHostname } from './swarm-task.js';
import { DNS_LABEL_RULE, LABEL_PREFIX, boolParser, dnsLabelProblem, parsePort, reportedTags, valueLengthProblem } from './values.js';
/** The routing labels given (see routing.ts); absent in configurations stored before issue 26. */
export interface ContainerConfig extends Routing {
  hostname: string;
  /** Where the hostname came from: the label, the swarm task (service and slot), the container name, or the endpoint ID. */
  hostnameSource: 'label' | 'task' | 'name' | 'endpoint';
  /** Deduplicated, in the order given; empty when the label is absent. */
  tags: string[];
  /** `svc:<name>`, lowercased. */
  service?: string;
  /** Sorted by port. */
  serve: ServeRule[];
  /** Serve the rules on the node's own name too; defaults to true, or false with a service. */
  direct: boolean;
  /** `tslink.magicdns`: tailnet names resolve in the container; absent: the network's choice (on by default). */
  magicDns?: boolean;
}


export const SERVE_PREFIX = 'tslink.serve.';
export const KNOWN_LABELS: readonly string[] = ['tslink.hostname', 'tslink.tags', 'tslink.service', 'tslink.serve.<port>', 'tslink.direct', 'tslink.magicdns', ...ROUTING_KEYS];

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


interface LabelDraft extends Routing {
  hostname?: string;
  tags: string[];
  service?: string;
  direct?: boolean;
  magicDns?: boolean;
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
    const tags = reportedTags(value, report);
    if (tags) draft.tags = tags;
  },
  'tslink.service': (value, draft, report) => {
    const v = value.trim();
    const name = v.toLowerCase().startsWith('svc:') ? v.slice('svc:'.length) : undefined;
    const problem = name === undefined ? 'it does not start with svc:' : dnsLabelProblem(name);
    if (problem) report(`not a Service name: ${problem}; write svc:<name>, the name ${DNS_LABEL_RULE}, e.g. svc:web`);
    else draft.service = v.toLowerCase();
  },
  'tslink.direct': boolParser<LabelDraft>('must be true or false', (draft, b) => (draft.direct = b)),
  'tslink.magicdns': boolParser<LabelDraft>('must be true (tailnet names resolve in the container, the default) or false', (draft, b) => (draft.magicDns = b)),
  ...ROUTING_PARSERS,
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

/** What the labels ask of their network and of the Tailscale found. */
function checkContext(draft: LabelDraft, ctx: { networkTags?: readonly string[]; networkRouting?: Readonly<Routing>; tailscaleVersion?: string }, errors: string[]): void {
  errors.push(...containerRoutingProblems(draft, ctx.networkRouting ?? {}));
  const tags = ctx.networkTags?.length ? ctx.networkTags : draft.tags;
  if (draft.service && !tags.length) {
    errors.push(`tslink: label tslink.service=${show(draft.service)}: a Tailscale Service host must be a tagged node; add tslink.tags=tag:<name> (a tag your tailnet's policy lets hosts of ${draft.service} use), or give the network --opt tslink.tags`);
  }
  const version = ctx.tailscaleVersion;
  if (!version) return;
  const wants: [Feature, boolean][] = [
    ['tslink.serve.<port>=…?proxy-protocol', draft.serve.some((r) => r.proxyProtocol !== undefined)],
    ['tslink.serve.<port>=…?accept-app-caps', draft.serve.some((r) => r.acceptAppCaps !== undefined)],
    ['tslink.service with tslink.serve.<port>=tcp…?proxy-protocol', draft.service !== undefined && draft.serve.some((r) => r.proxyProtocol !== undefined)],
    ['tslink.service with tslink.serve.<port>=tls-terminated-tcp', draft.service !== undefined && draft.serve.some((r) => r.proto === 'tls-terminated-tcp')],
  ];
  for (const [feature, used] of wants) {
    if (used && !atLeast(version, FEATURE_SINCE[feature])) {
      errors.push(`tslink: ${feature} needs Tailscale ${FEATURE_SINCE[feature]} or later, and this plugin runs Tailscale ${version}; install a plugin image with Tailscale ${SUPPORTED_TAILSCALE}, or point TS_PATH at a newer Tailscale`);
    }
  }
}

/**
 * A container's configuration from all of its labels (labels not starting with `tslink.` are
 * ignored). `containerName` may carry Docker's leading `/`.
 */
export function parseContainerLabels(
  labels: Readonly<Record<string, string>>,
  ctx: {
    containerName: string;
    endpointId: string;
    /** The network's own tags (`--opt tslink.tags`), which replace the container's. */
    networkTags?: readonly string[];
    /** The network's routing options, which the container's routing labels must fit (routing.ts). */
    networkRouting?: Readonly<Routing>;
    /** The version of the `tailscale` found, when known: features it lacks are refused. */
    tailscaleVersion?: string;
  },
): Parsed<'config', ContainerConfig> {
  const errors: string[] = [];
  const draft: LabelDraft = { tags: [], serve: [], serveLabels: 0 };
  const task = swarmTask(labels);
  for (const key of Object.keys(labels).sort()) {
    if (!key.toLowerCase().startsWith(LABEL_PREFIX)) continue;
    const given = textOf(labels[key]);
    const tooLong = valueLengthProblem(given, 'label');
    if (tooLong) {
      reporter(errors, 'label', key, show(given))(tooLong);
      continue;
    }
    // In a hostname, a service name's `_` and `.` become `-`, as in the default name.
    const expanded = expandTemplate(given, task, key === 'tslink.hostname' ? (v) => v.toLowerCase().replace(/[^a-z0-9-]+/g, '-') : undefined);
    if (!expanded.ok) {
      reporter(errors, 'label', key, show(given))(expanded.problem);
      continue;
    }
    const value = expanded.value;
    // A message about an expanded value quotes what the template became.
    const report = reporter(errors, 'label', key, value === given ? show(value) : `${show(given)} (${show(value)} in this task)`);
    const parser = LABELS[key];
    if (parser) parser(value, draft, report);
    else if (key.startsWith(SERVE_PREFIX)) parseServeLabel(key, value, draft, report);
    else errors.push(unknownLabel(key));
  }
  checkCombination(draft, errors);
  checkContext(draft, ctx, errors);
  if (errors.length) return failed(errors);
  // A swarm task's name changes with every update; its service and slot do not.
  const fromTask = draft.hostname === undefined && task ? taskHostname(task, sanitizeLabel) : undefined;
  const derived = draft.hostname !== undefined ? undefined : fromTask ? { hostname: fromTask, source: 'task' as const } : deriveHostname(ctx.containerName, ctx.endpointId);
  return {
    ok: true,
    config: {
      hostname: draft.hostname ?? derived?.hostname ?? LAST_RESORT_HOSTNAME,
      hostnameSource: derived?.source ?? 'label',
      tags: draft.tags,
      ...(draft.service ? { service: draft.service } : {}),
      serve: draft.serve.sort((a, b) => a.port - b.port),
      direct: draft.direct ?? draft.service === undefined,
      ...(draft.magicDns !== undefined ? { magicDns: draft.magicDns } : {}),
      ...givenRouting(draft),
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
  if (!net) return [];
  const kept = new Set(net);
  return container.tags.filter((t) => !kept.has(t));
}


/**
 * The `tslink.*` labels a container has because its image carries them: Docker copies an image's
 * LABELs into every container made from it, so without this an image author would pick the
 * node's tailnet name and what it serves. A label given at `docker run` with the very value the
 * image has cannot be told apart from the image's, and counts as the image's.
 */
export function labelsFromImage(labels: Readonly<Record<string, string>>, imageLabels: Readonly<Record<string, string>>): string[] {
  return Object.keys(labels)
    .filter((k) => k.toLowerCase().startsWith(LABEL_PREFIX) && Object.hasOwn(imageLabels, k) && imageLabels[k] === labels[k])
    .sort();
}

/** Whether any label is tslink's (only then is the image worth reading). */
export const hasTslinkLabel = (labels: Readonly<Record<string, string>>): boolean => Object.keys(labels).some((k) => k.toLowerCase().startsWith(LABEL_PREFIX));

/** Why a container's image labels are refused on a network that does not take them. */
export function imageLabelsRefused(keys: readonly string[], image: string): string {
  const shown = keys.slice(0, 5).map(showKey).join(', ') + (keys.length > 5 ? ` and ${keys.length - 5} more` : '');
  return `tslink: the image ${show(image)} sets ${shown}: an image's labels do not configure a node on this network, so an image cannot choose its tailnet name or what it serves; ` +
    'give the container its own values with docker run --label (or Compose labels; the same value as the image\'s counts as the image\'s), ' +
    'or let images configure nodes on this network: docker network create --opt tslink.image-labels=true';
}
