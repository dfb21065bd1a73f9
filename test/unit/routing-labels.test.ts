/**
 * Routing labels and options (issue 26): their grammar and messages, which of the network and
 * the container decides, the `tailscale up` flags a node gets, and when a recovered node must run
 * `up` again because its routing changed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseContainerLabels, type ContainerConfig } from '../../src/config/labels.js';
import { parseNetworkOptions, type NetworkConfig } from '../../src/config/network-options.js';
import { MAX_ROUTES, effectiveRouting, overriddenRouting, type Routing } from '../../src/config/routing.js';
import { nodeSpec } from '../../src/node/node-config.js';
import { sameUp } from '../../src/node/login.js';
import { ROUTING_OFF, routingArgs, upArgs } from '../../src/node/tailscale-cli.js';

const EP = 'e'.repeat(64);
type Ctx = Parameters<typeof parseContainerLabels>[1];
const CTX: Ctx = { containerName: '/web', endpointId: EP };

function configOf(labels: Record<string, string>, ctx: Partial<Ctx> = {}): ContainerConfig {
  const r = parseContainerLabels(labels, { ...CTX, ...ctx });
  if (!r.ok) assert.fail(`expected valid labels, got: ${r.message}`);
  return r.config;
}

function labelErrors(labels: Record<string, string>, ctx: Partial<Ctx> = {}): string[] {
  const r = parseContainerLabels(labels, { ...CTX, ...ctx });
  if (r.ok) assert.fail(`expected invalid labels: ${JSON.stringify(labels)}`);
  assert.equal(r.message, r.errors.join('; '));
  return r.errors;
}

/** The problem of the one error for one label, without the `tslink: label key="value": ` head. */
function problemOf(key: string, value: string): string {
  const errors = labelErrors({ [key]: value });
  assert.equal(errors.length, 1, errors.join(' | '));
  const head = `tslink: label ${key}=${JSON.stringify(value)}: `;
  assert.ok(errors[0]!.startsWith(head), errors[0]);
  return errors[0]!.slice(head.length);
}

function networkOf(generic: Record<string, unknown>): NetworkConfig {
  const r = parseNetworkOptions(generic, { envAuthKeyPresent: true });
  if (!r.ok) assert.fail(`expected valid options, got: ${r.message}`);
  return r.config;
}

function networkErrors(generic: Record<string, unknown>): string[] {
  const r = parseNetworkOptions(generic, { envAuthKeyPresent: true });
  if (r.ok) assert.fail(`expected invalid options: ${JSON.stringify(generic)}`);
  return r.errors;
}

const EXAMPLE = 'e.g. exit-1, exit-1.tail1234.ts.net or 100.64.0.1';
const BY = `name the exit node by its tailnet name or its Tailscale address, ${EXAMPLE}`;
const NAME_RULE = `name the exit node by its tailnet name (each dot-separated part 1-63 letters, digits and hyphens, not starting or ending with a hyphen) or its Tailscale address, ${EXAMPLE}`;
const NOT_TAILSCALE = 'is not a Tailscale address (those are in 100.64.0.0/10 and fd7a:115c:a1e0::/48)';
const CIDRS = 'e.g. 10.1.0.0/16 or fd00:1::/64';
const BOTH = 'a node cannot use an exit node and be one at the same time (Tailscale refuses it)';

describe('routing labels: valid values', () => {
  it('names an exit node by its base name or MagicDNS name (lower-cased, trailing dot dropped) or by its Tailscale address', () => {
    assert.equal(configOf({ 'tslink.exit-node': 'exit-1' }).exitNode, 'exit-1');
    assert.equal(configOf({ 'tslink.exit-node': ' Exit-1.Tail1234.TS.net. ' }).exitNode, 'exit-1.tail1234.ts.net');
    assert.equal(configOf({ 'tslink.exit-node': '100.64.0.1' }).exitNode, '100.64.0.1');
    assert.equal(configOf({ 'tslink.exit-node': '100.127.255.254' }).exitNode, '100.127.255.254');
    assert.equal(configOf({ 'tslink.exit-node': 'FD7A:115C:A1E0::1' }).exitNode, 'fd7a:115c:a1e0::1');
    const long = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
    assert.equal(long.length, 253);
    assert.equal(configOf({ 'tslink.exit-node': long }).exitNode, long);
  });

  it('takes the booleans, LAN access only with an exit node', () => {
    const c = configOf({ 'tslink.exit-node': 'exit-1', 'tslink.exit-node-allow-lan-access': 'TRUE', 'tslink.accept-routes': 'true' });
    assert.deepEqual([c.exitNodeAllowLanAccess, c.acceptRoutes], [true, true]);
    assert.equal(configOf({ 'tslink.advertise-exit-node': 'true' }).advertiseExitNode, true);
    assert.equal(configOf({ 'tslink.exit-node': 'exit-1', 'tslink.advertise-exit-node': 'false' }).advertiseExitNode, false);
  });

  it('advertises routes as canonical networks, trimmed and deduplicated in order', () => {
    assert.deepEqual(configOf({ 'tslink.advertise-routes': ' 10.1.0.0/16 , FD00:1::/64,10.1.0.0/16,192.168.7.0/24,fd7a:115c:a1e0:b1a:0:7::/96' }).advertiseRoutes,
      ['10.1.0.0/16', 'fd00:1::/64', '192.168.7.0/24', 'fd7a:115c:a1e0:b1a:0:7::/96']);
    const max = Array.from({ length: MAX_ROUTES }, (_, i) => `10.${i}.0.0/16`);
    assert.deepEqual(configOf({ 'tslink.advertise-routes': [...max, max[0]].join(',') }).advertiseRoutes, max, 'a repeat does not count');
  });

  it('leaves a configuration without routing labels as it was', () => {
    assert.deepEqual(Object.keys(configOf({ 'tslink.hostname': 'web' })).sort(), ['direct', 'hostname', 'hostnameSource', 'serve', 'tags']);
  });
});

describe('routing labels: refusals, each with its message', () => {
  it('exit node', () => {
    assert.equal(problemOf('tslink.exit-node', ''), `it is empty; name the exit node, ${EXAMPLE}, or leave it out`);
    assert.equal(problemOf('tslink.exit-node', '100.64.0'), `not an IPv4 address; ${BY}`);
    assert.equal(problemOf('tslink.exit-node', '100.064.0.1'), `not an IPv4 address; ${BY}`);
    assert.equal(problemOf('tslink.exit-node', '10.0.0.1'), `"10.0.0.1" ${NOT_TAILSCALE}; ${BY}`);
    assert.equal(problemOf('tslink.exit-node', '100.128.0.1'), `"100.128.0.1" ${NOT_TAILSCALE}; ${BY}`);
    assert.equal(problemOf('tslink.exit-node', 'fd00::1'), `"fd00::1" ${NOT_TAILSCALE}; ${BY}`);
    assert.equal(problemOf('tslink.exit-node', 'fd7a::g'), `not an IPv6 address; ${BY}`);
    assert.equal(problemOf('tslink.exit-node', 'fe80::1%eth0'), `not an IPv6 address; ${BY}`);
    assert.equal(problemOf('tslink.exit-node', 'fd7a:115c:a1e0:0::1'), 'write the address as fd7a:115c:a1e0::1');
    assert.equal(problemOf('tslink.exit-node', 'auto:any'), `tslink does not pick an exit node by itself; name one, ${EXAMPLE}`);
    assert.equal(problemOf('tslink.exit-node', 'exit_1'), `"_" is not allowed; ${NAME_RULE}`);
    assert.equal(problemOf('tslink.exit-node', 'exit-1..ts.net'), `its part "": it is empty; ${NAME_RULE}`);
    assert.equal(problemOf('tslink.exit-node', 'exit-.ts.net'), `its part "exit-": it starts or ends with a hyphen; ${NAME_RULE}`);
    const long = `${'a.'.repeat(126)}ab`;
    assert.equal(labelErrors({ 'tslink.exit-node': long })[0]?.endsWith(`: it is 254 characters long, a name may be at most 253; ${NAME_RULE}`), true);
  });

  it('booleans', () => {
    assert.equal(problemOf('tslink.accept-routes', 'yes'), 'must be true (the node uses the subnet routes other nodes advertise) or false (the default)');
    assert.equal(problemOf('tslink.advertise-exit-node', '1'), 'must be true (the node offers itself to the tailnet as an exit node) or false (the default)');
    assert.deepEqual(labelErrors({ 'tslink.exit-node': 'exit-1', 'tslink.exit-node-allow-lan-access': 'on' }), [
      'tslink: label tslink.exit-node-allow-lan-access="on": must be true (the node reaches its local networks directly while it uses an exit node) or false (the default)',
    ]);
  });

  it('advertised routes', () => {
    const empty = `there is an empty item (two commas in a row, or a comma at an end); write comma-separated CIDRs, ${CIDRS}`;
    assert.equal(problemOf('tslink.advertise-routes', ' '), 'it is empty; give at least one route, e.g. 10.1.0.0/16, or leave it out');
    assert.deepEqual(labelErrors({ 'tslink.advertise-routes': '10.0.0.0/8,' }), [`tslink: label tslink.advertise-routes="10.0.0.0/8,": ${empty}`]);
    assert.equal(problemOf('tslink.advertise-routes', '10.0.0.1'), `"10.0.0.1" is not a CIDR; write an IPv4 or IPv6 network and its prefix length, ${CIDRS}`);
    assert.equal(problemOf('tslink.advertise-routes', '10.0.0.0/33'), `"10.0.0.0/33" is not a CIDR; write an IPv4 or IPv6 network and its prefix length, ${CIDRS}`);
    assert.equal(problemOf('tslink.advertise-routes', '10.0.0.0/08'), `"10.0.0.0/08" is not a CIDR; write an IPv4 or IPv6 network and its prefix length, ${CIDRS}`);
    for (const d of ['0.0.0.0/0', '::/0', '10.0.0.0/0']) {
      assert.equal(problemOf('tslink.advertise-routes', d), `"${d}" is the default route: to offer this node as an exit node, use tslink.advertise-exit-node=true instead`);
    }
    assert.equal(problemOf('tslink.advertise-routes', '10.0.0.1/8'), '"10.0.0.1/8" has host bits set; write the network, 10.0.0.0/8');
    assert.equal(problemOf('tslink.advertise-routes', 'fd00:1::1/64'), '"fd00:1::1/64" has host bits set; write the network, fd00:1::/64');
    assert.equal(problemOf('tslink.advertise-routes', 'fd00:0::/64'), 'write "fd00:0::/64" as fd00::/64');
    assert.equal(problemOf('tslink.advertise-routes', 'fd7a:115c:a1e0:b1a::/64'), '"fd7a:115c:a1e0:b1a::/64" is a 4via6 route, which must be at least a /96, e.g. fd7a:115c:a1e0:b1a:0:7::/96');
    assert.equal(problemOf('tslink.advertise-routes', 'fd7a:115c:a1e0:b1a:1:0:a00:0/104'), '"fd7a:115c:a1e0:b1a:1:0:a00:0/104" is a 4via6 route of site 65536; a site ID is at most 65535');
    const many = Array.from({ length: MAX_ROUTES + 1 }, (_, i) => `10.${i}.0.0/16`).join(',');
    assert.match(labelErrors({ 'tslink.advertise-routes': many })[0] ?? '', /: it has 65 routes; a node may advertise at most 64 \(advertise wider networks instead\)$/);
    // A flood of commas: one problem per item up to the cap, the rest counted.
    const flood = parseContainerLabels({ 'tslink.advertise-routes': ','.repeat(50) }, CTX);
    assert.ok(!flood.ok);
    assert.equal(flood.errors.length, 20);
    assert.match(flood.errors[19]!, /: and 32 more items are not routes either$/);
  });

  it('combinations on one container', () => {
    assert.deepEqual(labelErrors({ 'tslink.exit-node-allow-lan-access': 'true' }), [
      'tslink: label tslink.exit-node-allow-lan-access="true" has no effect without an exit node; add tslink.exit-node=<peer> (e.g. tslink.exit-node=exit-1), or remove tslink.exit-node-allow-lan-access',
    ]);
    assert.equal(labelErrors({ 'tslink.exit-node-allow-lan-access': 'false' }).length, 1, 'false has no effect either');
    assert.deepEqual(labelErrors({ 'tslink.exit-node': 'exit-1', 'tslink.advertise-exit-node': 'true' }), [
      `tslink: label tslink.exit-node="exit-1" and tslink.advertise-exit-node="true": ${BOTH}; remove one of them`,
    ]);
  });

  it('combinations with the network\'s options', () => {
    assert.deepEqual(labelErrors({ 'tslink.advertise-exit-node': 'true' }, { networkRouting: { exitNode: '100.64.0.1' } }), [
      `tslink: label tslink.advertise-exit-node="true": this network sends its nodes' traffic through the exit node "100.64.0.1" (--opt tslink.exit-node), and ${BOTH}; remove the label, or use another network`,
    ]);
    assert.deepEqual(labelErrors({ 'tslink.exit-node': 'exit-1' }, { networkRouting: { advertiseExitNode: true } }), [
      `tslink: label tslink.exit-node="exit-1": this network makes its nodes exit nodes (--opt tslink.advertise-exit-node=true), and ${BOTH}; add tslink.advertise-exit-node=false, or remove tslink.exit-node`,
    ]);
    assert.ok(configOf({ 'tslink.exit-node': 'exit-1', 'tslink.advertise-exit-node': 'false' }, { networkRouting: { advertiseExitNode: true } }));
    assert.equal(configOf({ 'tslink.exit-node-allow-lan-access': 'true' }, { networkRouting: { exitNode: 'exit-1' } }).exitNodeAllowLanAccess, true, 'the network names the exit node');
  });
});

describe('routing network options', () => {
  it('takes the same values as the labels', () => {
    const n = networkOf({ 'tslink.exit-node': '100.64.0.9', 'tslink.exit-node-allow-lan-access': 'false', 'tslink.accept-routes': 'true', 'tslink.advertise-routes': '10.9.0.0/16' });
    assert.deepEqual([n.exitNode, n.exitNodeAllowLanAccess, n.acceptRoutes, n.advertiseRoutes], ['100.64.0.9', false, true, ['10.9.0.0/16']]);
    assert.equal(networkOf({ 'tslink.advertise-exit-node': 'true' }).advertiseExitNode, true);
    // A rule for the exit nodes its containers name themselves.
    assert.equal(networkOf({ 'tslink.exit-node-allow-lan-access': 'false' }).exitNodeAllowLanAccess, false);
    assert.deepEqual(Object.keys(networkOf({})).sort(), ['ephemeral', 'mtu']);
  });

  it('refuses bad values and an exit node that is also offered', () => {
    assert.deepEqual(networkErrors({ 'tslink.advertise-routes': '0.0.0.0/0' }), [
      'tslink: option tslink.advertise-routes="0.0.0.0/0": "0.0.0.0/0" is the default route: to offer this node as an exit node, use tslink.advertise-exit-node=true instead',
    ]);
    assert.deepEqual(networkErrors({ 'tslink.exit-node': '10.0.0.1' }), [`tslink: option tslink.exit-node="10.0.0.1": "10.0.0.1" ${NOT_TAILSCALE}; ${BY}`]);
    assert.deepEqual(networkErrors({ 'tslink.accept-routes': 'maybe' }), ['tslink: option tslink.accept-routes="maybe": must be true (the node uses the subnet routes other nodes advertise) or false (the default)']);
    assert.deepEqual(networkErrors({ 'tslink.exit-node': 'exit-1', 'tslink.advertise-exit-node': 'true' }), [
      `tslink: option tslink.exit-node="exit-1" and tslink.advertise-exit-node="true": ${BOTH}; remove one of them`,
    ]);
  });
});

describe('routing: the network or the container', () => {
  const none = { exitNodeAllowLanAccess: false, advertiseExitNode: false, advertiseRoutes: [], acceptRoutes: false };

  it('the network\'s exit node, LAN access and route acceptance win when given', () => {
    const c: Routing = { exitNode: 'mine', exitNodeAllowLanAccess: true, acceptRoutes: false };
    assert.deepEqual(effectiveRouting({ exitNode: 'theirs', exitNodeAllowLanAccess: false, acceptRoutes: true }, c), { ...none, exitNode: 'theirs', acceptRoutes: true });
    assert.deepEqual(effectiveRouting({}, c), { ...none, exitNode: 'mine', exitNodeAllowLanAccess: true });
    assert.deepEqual(effectiveRouting({ exitNode: 'theirs' }, c), { ...none, exitNode: 'theirs', exitNodeAllowLanAccess: true }, 'the container\'s LAN access, the network silent on it');
    assert.deepEqual(effectiveRouting({ exitNodeAllowLanAccess: true }, { exitNode: 'mine' }), { ...none, exitNode: 'mine', exitNodeAllowLanAccess: true });
    assert.deepEqual(effectiveRouting({ exitNodeAllowLanAccess: true }, {}), none, 'no LAN access without an exit node');
    assert.deepEqual(overriddenRouting({ exitNode: 'theirs', exitNodeAllowLanAccess: false, acceptRoutes: true }, c), ['tslink.exit-node', 'tslink.exit-node-allow-lan-access', 'tslink.accept-routes']);
    assert.deepEqual(overriddenRouting({ exitNode: 'mine', acceptRoutes: false }, c), [], 'the same values are no override');
  });

  it('the container\'s advertisements replace the network\'s defaults', () => {
    assert.deepEqual(effectiveRouting({ advertiseExitNode: true, advertiseRoutes: ['10.0.0.0/8'] }, {}), { ...none, advertiseExitNode: true, advertiseRoutes: ['10.0.0.0/8'] });
    assert.deepEqual(effectiveRouting({ advertiseExitNode: true, advertiseRoutes: ['10.0.0.0/8'] }, { advertiseExitNode: false, advertiseRoutes: ['10.1.0.0/16'] }), { ...none, advertiseRoutes: ['10.1.0.0/16'] });
    assert.deepEqual(overriddenRouting({ advertiseExitNode: true, advertiseRoutes: ['10.0.0.0/8'] }, { advertiseExitNode: false, advertiseRoutes: ['10.1.0.0/16'] }), []);
  });

  it('never an exit node and an exit node offer at once: the exit node stays', () => {
    assert.deepEqual(effectiveRouting({ exitNode: 'theirs' }, { advertiseExitNode: true }), { ...none, exitNode: 'theirs' });
    assert.deepEqual(overriddenRouting({ exitNode: 'theirs' }, { advertiseExitNode: true }), ['tslink.advertise-exit-node']);
  });

  it('nodeSpec resolves them from the endpoint\'s labels and the network\'s options', () => {
    const ep = {
      id: EP, networkId: 'n'.repeat(64), address: '10.0.0.2', prefixLen: 24, hostIf: 'tshx', containerIf: 'tscx', createdAt: '', sandboxKey: '/run/docker/netns/x',
      config: configOf({ 'tslink.exit-node': 'mine', 'tslink.accept-routes': 'true', 'tslink.advertise-routes': '10.1.0.0/16' }),
    };
    const net = { id: 'n'.repeat(64), createdAt: '', subnet: '10.0.0.0/24', gateway: '10.0.0.1', mtu: 1500, config: networkOf({ 'tslink.exit-node': '100.64.0.1', 'tslink.accept-routes': 'false', 'tslink.advertise-routes': '10.9.0.0/16' }) };
    const s = nodeSpec(ep, net)!;
    assert.deepEqual([s.exitNode, s.exitNodeAllowLanAccess, s.advertiseExitNode, s.advertiseRoutes, s.acceptRoutes], ['100.64.0.1', false, false, ['10.1.0.0/16'], false]);
    // An endpoint stored before routing labels existed: everything off.
    const old = nodeSpec({ ...ep, config: { hostname: 'web', hostnameSource: 'label', tags: [], serve: [], direct: true } }, { ...net, config: { ephemeral: false, mtu: 1500 } })!;
    assert.deepEqual([old.exitNode, old.exitNodeAllowLanAccess, old.advertiseExitNode, old.advertiseRoutes, old.acceptRoutes], [undefined, false, false, [], false]);
  });
});

describe('routing: the tailscale up flags', () => {
  const base = { hostname: 'web', tags: ['tag:web'], timeoutSec: 60 };
  const head = ['up', '--reset', '--hostname=web', '--accept-dns=false', '--timeout=60s', '--advertise-tags=tag:web'];

  it('names every routing setting, off ones with their off value, so an `up --reset` clears a removed label', () => {
    assert.deepEqual(upArgs(base), [...head, '--accept-routes=false', '--advertise-exit-node=false', '--advertise-routes=', '--exit-node=']);
    assert.deepEqual(ROUTING_OFF, ['--accept-routes=false', '--advertise-exit-node=false', '--advertise-routes=', '--exit-node=']);
  });

  it('maps each setting to its flag', () => {
    assert.deepEqual(routingArgs({ acceptRoutes: true }), ['--accept-routes=true', '--advertise-exit-node=false', '--advertise-routes=', '--exit-node=']);
    assert.deepEqual(routingArgs({ advertiseExitNode: true }), ['--accept-routes=false', '--advertise-exit-node=true', '--advertise-routes=', '--exit-node=']);
    assert.deepEqual(routingArgs({ advertiseRoutes: ['10.1.0.0/16', 'fd00:1::/64'] }), ['--accept-routes=false', '--advertise-exit-node=false', '--advertise-routes=10.1.0.0/16,fd00:1::/64', '--exit-node=']);
    assert.deepEqual(routingArgs({ exitNode: 'exit-1' }), ['--accept-routes=false', '--advertise-exit-node=false', '--advertise-routes=', '--exit-node=exit-1', '--exit-node-allow-lan-access=false']);
    assert.deepEqual(routingArgs({ exitNode: '100.64.0.1', exitNodeAllowLanAccess: true }).slice(3), ['--exit-node=100.64.0.1', '--exit-node-allow-lan-access=true']);
  });

  it('never names LAN access without an exit node (the real CLI refuses it)', () => {
    assert.ok(!routingArgs({ exitNodeAllowLanAccess: true }).some((a) => a.startsWith('--exit-node-allow-lan-access')));
  });

  it('keeps the routing flags before the login server and the key', () => {
    const a = upArgs({ ...base, loginServer: 'https://hs.example', keyOnStdin: true, forceReauth: true, acceptRoutes: true });
    assert.deepEqual(a.slice(head.length), ['--accept-routes=true', '--advertise-exit-node=false', '--advertise-routes=', '--exit-node=', '--login-server=https://hs.example', '--force-reauth', '--auth-key=file:/dev/stdin']);
  });
});

describe('routing: resume or up', () => {
  const base = { hostname: 'web', tags: ['tag:web'], timeoutSec: 60 };
  const recorded = (s: Parameters<typeof upArgs>[0]): string => JSON.stringify(upArgs(s));

  it('a changed routing setting is a change', () => {
    const wanted = upArgs({ ...base, acceptRoutes: true });
    assert.equal(sameUp(recorded(base), wanted), false);
    assert.equal(sameUp(recorded({ ...base, acceptRoutes: true }), wanted), true);
    for (const change of [{ exitNode: 'exit-1' }, { exitNode: 'exit-1', exitNodeAllowLanAccess: true }, { advertiseExitNode: true }, { advertiseRoutes: ['10.1.0.0/16'] }]) {
      assert.equal(sameUp(recorded(base), upArgs({ ...base, ...change })), false, JSON.stringify(change));
      assert.equal(sameUp(recorded({ ...base, ...change }), upArgs(base)), false, `removed: ${JSON.stringify(change)}`);
    }
    assert.equal(sameUp(recorded({ ...base, exitNode: 'exit-1' }), upArgs({ ...base, exitNode: 'exit-1', exitNodeAllowLanAccess: true })), false);
  });

  it('an `up` recorded before routing flags existed meant them off', () => {
    const before = JSON.stringify(['up', '--reset', '--hostname=web', '--accept-dns=false', '--timeout=60s', '--advertise-tags=tag:web']);
    assert.equal(sameUp(before, upArgs(base)), true);
    assert.equal(sameUp(before, upArgs({ ...base, advertiseRoutes: ['10.1.0.0/16'] })), false);
  });

  it('no record, or one that cannot be read, is no match', () => {
    assert.equal(sameUp(undefined, upArgs(base)), false);
    assert.equal(sameUp('{', upArgs(base)), false);
    assert.equal(sameUp('{"up":1}', upArgs(base)), false);
    assert.equal(sameUp('[1]', upArgs(base)), false);
  });
});
