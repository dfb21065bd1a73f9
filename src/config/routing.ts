/**
 * Routing (issue 26): where a node's traffic goes (`tslink.exit-node`,
 * `tslink.exit-node-allow-lan-access`, `tslink.accept-routes`) and what the node offers the
 * tailnet (`tslink.advertise-exit-node`, `tslink.advertise-routes`). The same keys are container
 * labels and network options. Where traffic goes is the network operator's to decide: the
 * network's value wins, so a container cannot route around it. What a node offers is the
 * container's to decide: the network's value is only a default.
 */
import { type Report, show } from './messages.js';
import { TAILNET_V4, TAILNET_V6 } from './tailnet.js';
import { DNS_LABEL_RULE, dnsLabelProblem, formatIp, formatPrefix, inPrefix, boolParser, parseIp, parseList, parsePrefix } from './values.js';

/** The routing keys a label map or an option map gave; absent ones were not given. */
export interface Routing {
  /** A peer's name (lowercased, without a trailing dot) or its Tailscale address (canonical). */
  exitNode?: string;
  exitNodeAllowLanAccess?: boolean;
  advertiseExitNode?: boolean;
  /** Canonical network prefixes, deduplicated, in the order given. */
  advertiseRoutes?: string[];
  acceptRoutes?: boolean;
}

/** What a node is told: the container's routing and its network's, resolved. */
export interface NodeRouting {
  exitNode?: string;
  exitNodeAllowLanAccess: boolean;
  advertiseExitNode: boolean;
  advertiseRoutes: string[];
  acceptRoutes: boolean;
}

export const ROUTING_KEYS = ['tslink.exit-node', 'tslink.exit-node-allow-lan-access', 'tslink.advertise-exit-node', 'tslink.advertise-routes', 'tslink.accept-routes'] as const;

/** A DNS name's limit (RFC 1035), which a MagicDNS name cannot pass either. */
const MAX_NAME = 253;
/** Far more routes than one container serves; bounds the `up` command line and the work. */
export const MAX_ROUTES = 64;
const EXIT_NODE_EXAMPLE = 'e.g. exit-1, exit-1.tail1234.ts.net or 100.64.0.1';
/** Tailscale's 4via6 range (net/tsaddr TailscaleViaRange): its routes have rules of their own. */
const VIA_RANGE = 'fd7a:115c:a1e0:b1a::/64';

/** A Tailscale address written as an exit node: canonical, in the tailnet's ranges. */
function exitNodeAddress(v: string): { value: string } | { problem: string } {
  const a = parseIp(v);
  const kind = v.includes(':') ? 'IPv6' : 'IPv4';
  if (!a) return { problem: `not an ${kind} address; name the exit node by its tailnet name or its Tailscale address, ${EXIT_NODE_EXAMPLE}` };
  const range = a.family === 4 ? TAILNET_V4 : TAILNET_V6;
  if (!inPrefix(a, range)) return { problem: `${show(v)} is not a Tailscale address (those are in ${TAILNET_V4} and ${TAILNET_V6}); name the exit node by its tailnet name or its Tailscale address, ${EXIT_NODE_EXAMPLE}` };
  const canonical = formatIp(a);
  if (canonical !== v.toLowerCase()) return { problem: `write the address as ${canonical}` };
  return { value: canonical };
}

/** A peer's name: a DNS label (its base name) or its full MagicDNS name, a trailing dot allowed. */
function exitNodeName(v: string): { value: string } | { problem: string } {
  const name = v.toLowerCase().replace(/\.$/, '');
  const rule = `name the exit node by its tailnet name (each dot-separated part ${DNS_LABEL_RULE}) or its Tailscale address, ${EXIT_NODE_EXAMPLE}`;
  if (name.length > MAX_NAME) return { problem: `it is ${name.length} characters long, a name may be at most ${MAX_NAME}; ${rule}` };
  const parts = name.split('.');
  for (const part of parts) {
    const problem = dnsLabelProblem(part);
    if (problem) return { problem: `${parts.length > 1 ? `its part ${show(part)}: ` : ''}${problem}; ${rule}` };
  }
  return { value: name };
}

/** `tslink.exit-node`: an address when it looks like one (digits and dots, or a colon), else a name. */
export function parseExitNode(value: string): { value: string } | { problem: string } {
  const v = value.trim();
  if (v === '') return { problem: `it is empty; name the exit node, ${EXIT_NODE_EXAMPLE}, or leave it out` };
  // The real CLI's auto:any picks an exit node by itself; tslink names the one it is told.
  if (v.toLowerCase().startsWith('auto:')) return { problem: `tslink does not pick an exit node by itself; name one, ${EXIT_NODE_EXAMPLE}` };
  return /^[0-9.]+$/.test(v) || v.includes(':') ? exitNodeAddress(v) : exitNodeName(v);
}

/** Why one route is refused, or its canonical text. */
function routeOf(item: string): { value: string } | { problem: string } {
  const example = 'e.g. 10.1.0.0/16 or fd00:1::/64';
  if (item === '') return { problem: `there is an empty item (two commas in a row, or a comma at an end); write comma-separated CIDRs, ${example}` };
  const p = parsePrefix(item.toLowerCase());
  if (!p) return { problem: `${show(item)} is not a CIDR; write an IPv4 or IPv6 network and its prefix length, ${example}` };
  const text = formatPrefix(p);
  if (p.bits === 0) return { problem: `${show(item)} is the default route: to offer this node as an exit node, use tslink.advertise-exit-node=true instead` };
  if (p.network.value !== p.addr.value) return { problem: `${show(item)} has host bits set; write the network, ${text}` };
  if (`${formatIp(p.addr)}/${p.bits}` !== item.toLowerCase()) return { problem: `write ${show(item)} as ${text}` };
  // Tailscale refuses these itself (net/netutil/routes.go ValidateViaPrefix), and only at `up`.
  if (inPrefix(p.network, VIA_RANGE)) {
    const site = (p.network.value >> 32n) & 0xffffffffn;
    if (p.bits < 96) return { problem: `${show(item)} is a 4via6 route, which must be at least a /96, e.g. fd7a:115c:a1e0:b1a:0:7::/96` };
    if (site > 0xffffn) return { problem: `${show(item)} is a 4via6 route of site ${site}; a site ID is at most 65535` };
  }
  return { value: text };
}

/** `tslink.advertise-routes`: comma-separated CIDRs, trimmed, deduplicated in order; one problem per bad item. */
export function parseRouteList(value: string): { routes: string[]; problems: string[] } {
  const r = parseList(value, { empty: 'it is empty; give at least one route, e.g. 10.1.0.0/16, or leave it out', noun: 'routes', item: routeOf });
  if (r.items.length > MAX_ROUTES) r.problems.push(`it has ${r.items.length} routes; a node may advertise at most ${MAX_ROUTES} (advertise wider networks instead)`);
  return { routes: r.items, problems: r.problems };
}


/** One parser per routing key, for labels and network options alike. */
export const ROUTING_PARSERS: Record<(typeof ROUTING_KEYS)[number], (value: string, into: Routing, report: Report) => void> = {
  'tslink.exit-node': (value, into, report) => {
    const r = parseExitNode(value);
    if ('problem' in r) report(r.problem);
    else into.exitNode = r.value;
  },
  'tslink.exit-node-allow-lan-access': boolParser<Routing>('must be true (the node reaches its local networks directly while it uses an exit node) or false (the default)', (into, b) => (into.exitNodeAllowLanAccess = b)),
  'tslink.advertise-exit-node': boolParser<Routing>('must be true (the node offers itself to the tailnet as an exit node) or false (the default)', (into, b) => (into.advertiseExitNode = b)),
  'tslink.advertise-routes': (value, into, report) => {
    const { routes, problems } = parseRouteList(value);
    problems.forEach(report);
    if (!problems.length) into.advertiseRoutes = routes;
  },
  'tslink.accept-routes': boolParser<Routing>('must be true (the node uses the subnet routes other nodes advertise) or false (the default)', (into, b) => (into.acceptRoutes = b)),
};

/** Both at once is what Tailscale refuses (ipn/ipnlocal/local.go checkExitNodePrefsLocked). */
const BOTH = 'a node cannot use an exit node and be one at the same time (Tailscale refuses it)';

/** A network's routing options that cannot work together. */
export function networkRoutingProblems(net: Routing): string[] {
  if (net.exitNode === undefined || net.advertiseExitNode !== true) return [];
  return [`tslink: option tslink.exit-node=${show(net.exitNode)} and tslink.advertise-exit-node="true": ${BOTH}; remove one of them`];
}

/** A container's routing labels that cannot work, alone or with its network's options. */
export function containerRoutingProblems(c: Routing, net: Routing): string[] {
  const errors: string[] = [];
  const exitNode = net.exitNode ?? c.exitNode;
  if (c.exitNodeAllowLanAccess !== undefined && exitNode === undefined) {
    errors.push(`tslink: label tslink.exit-node-allow-lan-access=${show(String(c.exitNodeAllowLanAccess))} has no effect without an exit node; add tslink.exit-node=<peer> (e.g. tslink.exit-node=exit-1), or remove tslink.exit-node-allow-lan-access`);
  }
  if (exitNode === undefined || (c.advertiseExitNode ?? net.advertiseExitNode) !== true) return errors;
  if (net.exitNode !== undefined && c.advertiseExitNode === true) {
    errors.push(`tslink: label tslink.advertise-exit-node="true": this network sends its nodes' traffic through the exit node ${show(net.exitNode)} (--opt tslink.exit-node), and ${BOTH}; remove the label, or use another network`);
  } else if (net.exitNode === undefined && c.advertiseExitNode === true) {
    errors.push(`tslink: label tslink.exit-node=${show(exitNode)} and tslink.advertise-exit-node="true": ${BOTH}; remove one of them`);
  } else if (net.exitNode === undefined) {
    errors.push(`tslink: label tslink.exit-node=${show(exitNode)}: this network makes its nodes exit nodes (--opt tslink.advertise-exit-node=true), and ${BOTH}; add tslink.advertise-exit-node=false, or remove tslink.exit-node`);
  }
  // Both from the network: its options were refused when it was created.
  return errors;
}

/**
 * What a node is told. The network's exit node, LAN access and route acceptance win when given;
 * its advertisements are defaults the container's labels replace. Should both an exit node and an
 * exit node offer remain (labels checked before the network had its say), the exit node wins:
 * it is the one a container must not undo, and Tailscale would refuse both.
 */
export function effectiveRouting(net: Routing, c: Routing): NodeRouting {
  const exitNode = net.exitNode ?? c.exitNode;
  return {
    ...(exitNode !== undefined ? { exitNode } : {}),
    exitNodeAllowLanAccess: exitNode !== undefined && (net.exitNodeAllowLanAccess ?? c.exitNodeAllowLanAccess ?? false),
    advertiseExitNode: exitNode === undefined && (c.advertiseExitNode ?? net.advertiseExitNode ?? false),
    advertiseRoutes: [...(c.advertiseRoutes ?? net.advertiseRoutes ?? [])],
    acceptRoutes: net.acceptRoutes ?? c.acceptRoutes ?? false,
  };
}

/** The container's routing labels its network overrides, which the node therefore does not get (for a warning). */
export function overriddenRouting(net: Routing, c: Routing): string[] {
  const lost: string[] = [];
  if (net.exitNode !== undefined && c.exitNode !== undefined && c.exitNode !== net.exitNode) lost.push('tslink.exit-node');
  const lan = net.exitNodeAllowLanAccess;
  if (lan !== undefined && c.exitNodeAllowLanAccess !== undefined && c.exitNodeAllowLanAccess !== lan) lost.push('tslink.exit-node-allow-lan-access');
  if (net.acceptRoutes !== undefined && c.acceptRoutes !== undefined && c.acceptRoutes !== net.acceptRoutes) lost.push('tslink.accept-routes');
  if (net.exitNode !== undefined && c.advertiseExitNode === true) lost.push('tslink.advertise-exit-node');
  return lost;
}

/** Only the routing keys given, so a configuration without routing stays as it was stored before. */
export function givenRouting(r: Routing): Routing {
  const out: Routing = {};
  if (r.exitNode !== undefined) out.exitNode = r.exitNode;
  if (r.exitNodeAllowLanAccess !== undefined) out.exitNodeAllowLanAccess = r.exitNodeAllowLanAccess;
  if (r.advertiseExitNode !== undefined) out.advertiseExitNode = r.advertiseExitNode;
  if (r.advertiseRoutes !== undefined) out.advertiseRoutes = [...r.advertiseRoutes];
  if (r.acceptRoutes !== undefined) out.acceptRoutes = r.acceptRoutes;
  return out;
}
