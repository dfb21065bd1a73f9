import { effectiveTags } from '../config/labels.js';
import { WIREGUARD_PORT } from '../config/tailnet.js';
import { parseWireguardPort } from '../host/wireguard-ports.js';
import { effectiveRouting } from '../config/routing.js';
import type { ServeRule } from '../config/serve.js';
import type { EndpointRecord, NetworkRecord } from '../state/store.js';
import { serveArgs } from './tailscale-cli.js';
import type { NodeState } from './status.js';

/** Everything one node needs to know, resolved from its container's labels and its network. */
export interface NodeSpec {
  endpointId: string;
  networkId: string;
  containerId?: string;
  containerName?: string;
  sandboxKey: string;
  hostname: string;
  tags: string[];
  loginServer?: string;
  ephemeral: boolean;
  service?: string;
  serve: ServeRule[];
  direct: boolean;
  /** Tailnet names resolve in the container (its label, else its network's option, else on). */
  magicDns: boolean;
  /** The exit node (the network's, else the container's): a peer's name or Tailscale address. */
  exitNode?: string;
  /** Only with an exit node (the network's choice, else the container's). */
  exitNodeAllowLanAccess: boolean;
  /** Never with an exit node (the container's label, else the network's default). */
  advertiseExitNode: boolean;
  /** Canonical CIDRs (the container's label, else the network's default). */
  advertiseRoutes: string[];
  /** The network's choice, else the container's. */
  acceptRoutes: boolean;
  /** tailscaled's UDP port (`--port`): the endpoint's own, or 41641 for a record without one. */
  wireguardPort: number;
}

/**
 * Builds a node's spec from its endpoint's bound configuration; the network's tags always win, as
 * do its exit node, LAN access and route acceptance (effectiveRouting).
 * A node is ephemeral when its network says so or its key does (an OAuth secret's
 * `?ephemeral=true`); a plain key's own kind cannot be seen from here.
 */
export function nodeSpec(ep: EndpointRecord, net: NetworkRecord, authKey?: string): NodeSpec | undefined {
  const c = ep.config;
  if (!c || !ep.sandboxKey) return undefined;
  return {
    endpointId: ep.id,
    networkId: net.id,
    containerId: ep.containerId,
    containerName: ep.containerName,
    sandboxKey: ep.sandboxKey,
    hostname: c.hostname,
    tags: effectiveTags(net.config, c),
    loginServer: net.config.loginServer,
    // A client secret's own `ephemeral` attribute wins; loginKey() gives one without it the network's kind.
    ephemeral: net.config.ephemeral || clientSecretAttrs(authKey ?? '')?.attrs.get('ephemeral') === 'true',
    service: c.service,
    serve: c.serve,
    direct: c.direct,
    magicDns: c.magicDns ?? net.config.magicDns ?? true,
    ...effectiveRouting(net.config, c),
    wireguardPort: parseWireguardPort(ep.wireguardPort) ?? WIREGUARD_PORT,
  };
}

/** An OAuth client secret split into the secret and its `?attributes`; undefined for any other key. */
function clientSecretAttrs(key: string): { secret: string; attrs: URLSearchParams } | undefined {
  if (!key.startsWith('tskey-client-')) return undefined;
  const q = key.indexOf('?');
  return { secret: q < 0 ? key : key.slice(0, q), attrs: new URLSearchParams(q < 0 ? '' : key.slice(q + 1)) };
}

/**
 * An OAuth client secret chooses the node's kind by its attributes, and the real CLI makes the
 * node ephemeral unless told otherwise (`ephemeral` defaults to true): tslink fills in every
 * attribute the secret leaves out, from the network. Plain keys carry their kind themselves.
 */
export function loginKey(key: string, ephemeral: boolean): string {
  const parsed = clientSecretAttrs(key);
  if (!parsed) return key;
  const { secret, attrs } = parsed;
  if (!attrs.has('ephemeral')) attrs.set('ephemeral', String(ephemeral));
  if (!attrs.has('preauthorized')) attrs.set('preauthorized', 'true');
  return `${secret}?${attrs.toString()}`;
}

/** Failures that a retry cannot mend: say so and stop, instead of hammering the control server. */
export function classifyUpFailure(text: string): { state: NodeState; permanent: boolean; hint?: string } {
  // Control's answer to tags it will not give this node: a tag problem, not a bad key.
  if (/requested tags .*(invalid|not permitted)/i.test(text)) {
    return {
      state: 'failed', permanent: true,
      hint: 'the control server refused these tags: let the key\'s owner own them (tagOwners), or on headscale, where tags come from a tagged pre-auth key, leave tslink.tags unset',
    };
  }
  if (/invalid key|key (has )?expired|not valid|unauthori[sz]ed|backend error/i.test(text)) return { state: 'logged-out', permanent: true };
  // In text mode the real CLI says "To approve your machine, visit (as admin)" for NeedsMachineAuth.
  if (/needs? ?login|NeedsLogin|To authenticate, visit|NeedsMachineAuth|To approve your machine/i.test(text)) return { state: 'logged-out', permanent: true };
  if (/invalid (hostname|tag)|tag:.*invalid|is not a valid/i.test(text)) return { state: 'failed', permanent: true };
  return { state: 'retrying', permanent: false };
}

/**
 * The serve configuration as CLI calls, applied as a whole: reset, then every rule (on the node's
 * own name when direct, and for the Service), then the Service advertisement.
 */
export function servePlan(spec: Pick<NodeSpec, 'serve' | 'service' | 'direct'>, staleService?: string): { what: string; args: string[] }[] {
  // A Service this node no longer backs stays advertised through a reset: drain it first.
  const plan = staleService && staleService !== spec.service ? [{ what: `drain ${staleService}`, args: ['serve', 'drain', staleService] }] : [];
  plan.push({ what: 'serve reset', args: ['serve', 'reset'] });
  for (const rule of spec.serve) {
    if (spec.direct && rule.proto !== 'tun') plan.push({ what: `serve ${rule.proto}:${rule.port}`, args: serveArgs(rule) });
    if (spec.service) plan.push({ what: `serve ${rule.proto}:${rule.port} for ${spec.service}`, args: serveArgs(rule, spec.service) });
  }
  if (spec.service) plan.push({ what: `advertise ${spec.service}`, args: ['serve', 'advertise', spec.service] });
  return plan;
}
