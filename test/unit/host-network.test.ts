import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { RunOptions, Runner } from '../../src/util/exec.js';
import fc from 'fast-check';
import { IprouteHostNetwork } from '../../src/host/network.js';
import { endpointHost, linkNames, networkHost, parseDockerId, type DockerId } from '../../src/host/host-spec.js';
import { parseCidr, parseIpv4, parseNetwork, subnetHalves, type Ipv4Network } from '../../src/host/ipv4.js';

interface Call {
  cmd: string;
  args: string[];
  input?: string;
}

/** A scripted `ip`/`iptables`: answers by the first matching rule, records every call. */
function scripted(rules: [RegExp, { code?: number; stdout?: string; stderr?: string }][]): { run: Runner; calls: Call[] } {
  const calls: Call[] = [];
  const run: Runner = async (cmd, args, opts?: RunOptions) => {
    calls.push({ cmd, args: [...args], input: opts?.input });
    const line = `${cmd} ${args.join(' ')}`;
    const hit = rules.find(([re]) => re.test(line));
    return { code: hit?.[1].code ?? 0, stdout: hit?.[1].stdout ?? '', stderr: hit?.[1].stderr ?? '' };
  };
  return { run, calls };
}

const net = networkHost({ id: 'f'.repeat(64), subnet: '10.9.0.0/24', gateway: '10.9.0.1', mtu: 1400 });
const EP_ID = ('1234567890ab' + 'c'.repeat(52)) as DockerId;
const ep = endpointHost({ id: EP_ID, address: '10.9.0.5', ...linkNames(EP_ID, new Set()) });

describe('host network', () => {
  it('turns forwarding on only when off, and says how when it cannot', async () => {
    const { run } = scripted([[/-C /, { code: 0 }]]);
    const writes: string[] = [];
    await new IprouteHostNetwork(run, undefined, async (p) => void writes.push(p), async () => '0\n').syncRules([net]);
    assert.deepEqual(writes, ['/proc/sys/net/ipv4/ip_forward']);
    const ro = new IprouteHostNetwork(run, undefined, async () => { throw new Error('EROFS: read-only file system'); }, async () => '0\n');
    await assert.rejects(ro.syncRules([net]), /sysctl -w net\.ipv4\.ip_forward=1/);
  });

  it('names links within the 15-byte limit, unique among live endpoints that share a prefix', () => {
    const id = '0123456789abcdef'.repeat(4) as DockerId;
    const n = linkNames(id, new Set());
    assert.deepEqual(n, { hostIf: 'tsh0123456789ab', containerIf: 'tsc0123456789ab' });
    const other = linkNames(id, new Set([n.hostIf, n.containerIf]));
    assert.notEqual(other.hostIf, n.hostIf, 'a second endpoint with the same 12-hex prefix gets other names');
    assert.ok(other.hostIf.length === 15 && /^tsh[0-9a-f]{12}$/.test(other.hostIf));
  });

  it('makes the endpoint with one idempotent ip batch, without any sysctl', async () => {
    const { run, calls } = scripted([]);
    const sysctls: [string, string][] = [];
    const host = new IprouteHostNetwork(run, undefined, async (p, v) => void sysctls.push([p, v]), async () => '1\n');
    await host.setUpEndpoint(net, ep);
    assert.equal(calls.length, 1);
    assert.deepEqual(calls[0]?.args, ['-force', '-batch', '-']);
    const input = calls[0]?.input ?? '';
    assert.match(input, /^link add tsh1234567890ab mtu 1400 type veth peer name tsc1234567890ab mtu 1400$/m);
    assert.match(input, /address replace 10\.9\.0\.1\/32 dev tsh1234567890ab/);
    assert.match(input, /route replace 10\.9\.0\.5\/32 dev tsh1234567890ab proto 211 scope link/);
    assert.deepEqual(sysctls, [], 'no sysctl: a managed plugin cannot write /proc/sys');
  });

  it('accepts an existing link on a repeated Join, and fails on anything else', async () => {
    const again = scripted([[/^ip -force -batch/, { code: 1, stderr: 'RTNETLINK answers: File exists\nCommand failed -:1\n' }]]);
    await new IprouteHostNetwork(again.run, undefined, async () => undefined).setUpEndpoint(net, ep);
    const broken = scripted([[/^ip -force -batch/, { code: 1, stderr: 'RTNETLINK answers: File exists\nCommand failed -:1\nError: Nexthop has invalid gateway.\nCommand failed -:5\n' }]]);
    await assert.rejects(new IprouteHostNetwork(broken.run, undefined, async () => undefined).setUpEndpoint(net, ep), /Nexthop has invalid gateway/);
  });

  it("removes only links that carry the endpoint's alias, many in one ip call", async () => {
    const other = endpointHost({ id: 'e'.repeat(64), address: '10.9.0.6', ...linkNames('e'.repeat(64) as DockerId, new Set()) });
    const stranger = endpointHost({ id: 'd'.repeat(64), address: '10.9.0.7', ...linkNames('d'.repeat(64) as DockerId, new Set()) });
    const links = [
      { ifname: ep.hostIf, ifalias: `tslink:${ep.id}` },
      { ifname: other.hostIf, ifalias: `tslink:ffffffffffff:${other.id.slice(0, 12)}` }, // an older tslink's alias
      { ifname: stranger.hostIf, ifalias: `tslink:${'9'.repeat(64)}` }, // same name, another endpoint's link
    ];
    const { run, calls } = scripted([[/^ip -json link show/, { stdout: JSON.stringify(links) }]]);
    await new IprouteHostNetwork(run, undefined, async () => undefined).tearDownEndpoints([ep, other, stranger]);
    const batches = calls.filter((c) => c.args[1] === '-batch');
    assert.equal(batches.length, 1);
    assert.equal(batches[0]!.input, `link del dev ${ep.hostIf}\nlink del dev ${other.hostIf}\n`);
  });

  it('treats a link that is already gone as torn down, and other failures as failures', async () => {
    const listed = [[/^ip -json link show/, { stdout: JSON.stringify([{ ifname: ep.hostIf, ifalias: `tslink:${ep.id}` }]) }]] as [RegExp, { stdout: string }][];
    const gone = scripted([...listed, [/^ip -force -batch/, { code: 1, stderr: 'Cannot find device "tsh1234567890ab"\nCommand failed -:1' }]]);
    await new IprouteHostNetwork(gone.run, undefined, async () => undefined).tearDownEndpoints([ep]);
    const broken = scripted([...listed, [/^ip -force -batch/, { code: 2, stderr: 'RTNETLINK answers: Operation not permitted' }]]);
    await assert.rejects(new IprouteHostNetwork(broken.run, undefined, async () => undefined).tearDownEndpoints([ep]), /Operation not permitted/);
  });

  it('undoes a half-made endpoint when its setup fails midway', async () => {
    const { run, calls } = scripted([
      [/^ip -force -batch/, { code: 1, stderr: 'Error: Nexthop has invalid gateway.\nCommand failed -:5\n' }],
      [/^ip -json link show/, { stdout: JSON.stringify([{ ifname: ep.hostIf, ifalias: `tslink:${ep.id}` }]) }],
    ]);
    await assert.rejects(new IprouteHostNetwork(run, undefined, async () => undefined).setUpEndpoint(net, ep));
    assert.ok(calls.some((c) => c.input === `link del dev ${ep.hostIf}\n`), 'the link it made is removed');
  });

  it('rewrites its chains whole, jumps once, and removes everything with the last network', async () => {
    const { run, calls } = scripted([[/-C FORWARD/, { code: 1 }], [/-C POSTROUTING/, { code: 0 }], [/ -D /, { code: 1 }]]);
    const writes: string[] = [];
    const host = new IprouteHostNetwork(run, undefined, async (p) => void writes.push(p), async () => '1\n');
    await host.syncRules([net]);
    assert.deepEqual(writes, [], 'forwarding already on: nothing written');
    const restore = calls.find((c) => c.cmd === 'iptables-restore');
    assert.deepEqual(restore?.args, ['-w', '--noflush']);
    assert.match(restore?.input ?? '', /:TSLINK-FORWARD - \[0:0\]/);
    assert.match(restore?.input ?? '', /-i tsh\+ -o tsh\+ -p udp -m multiport --dports 41641 -j ACCEPT/);
    assert.match(restore?.input ?? '', /-s 10\.9\.0\.0\/24 ! -o tsh\+ -m comment --comment tslink:ffffffffffff -j MASQUERADE/);
    assert.match(restore?.input ?? '', /-i tsh\+ -o br-\+ -m conntrack ! --ctstate DNAT -j DROP\n(.*\n)*-A TSLINK-FORWARD -i tsh\+ -j ACCEPT/, "Docker's bridges only through a published port, checked before anything from our links is accepted");
    assert.ok(calls.some((c) => c.args.join(' ') === '-w -t filter -I FORWARD 1 -j TSLINK-FORWARD'));
    assert.ok(!calls.some((c) => c.args.join(' ') === '-w -t nat -I POSTROUTING 1 -j TSLINK-POSTROUTING'));
    calls.length = 0;
    await host.syncRules([]);
    const lines = calls.map((c) => `${c.cmd} ${c.args.join(' ')}`);
    assert.ok(lines.includes('iptables -w -t filter -X TSLINK-FORWARD'));
    assert.ok(lines.includes('iptables -w -t nat -X TSLINK-POSTROUTING'));
  });

  it('lets WireGuard between containers pass on the shared port and on the containers\' own ports', async () => {
    const { run, calls } = scripted([]);
    await new IprouteHostNetwork(run, { first: 41642, last: 41941 }, async () => undefined, async () => '1\n').syncRules([net]);
    assert.match(calls.find((c) => c.cmd === 'iptables-restore')?.input ?? '', /-i tsh\+ -o tsh\+ -p udp -m multiport --dports 41641,41642:41941 -j ACCEPT/);
  });

  it("forwards each container's port from the host's own addresses in one rewritten chain, empties it with the last container, and removes chain and jump with the last network", async () => {
    const { run, calls } = scripted([[/-C PREROUTING/, { code: 1 }], [/ -D PREROUTING/, { code: 1 }]]);
    const host = new IprouteHostNetwork(run, { first: 41642, last: 41941 }, async () => undefined, async () => '1\n');
    await host.syncRules([net]);
    assert.match(calls.find((c) => c.cmd === 'iptables-restore')?.input ?? '', /-o tsh\+ -p udp -m conntrack --ctstate DNAT -m multiport --dports 41642:41941 -j ACCEPT\n-A TSLINK-FORWARD -o tsh\+ -j DROP/, 'a forwarded packet passes the filter, nothing else new does');
    calls.length = 0;
    await host.syncPortForwards([{ address: parseIpv4('10.9.0.5')!, port: 41642 }, { address: parseIpv4('10.9.0.6')!, port: 41643 }]);
    assert.equal(calls[0]?.input, '*nat\n:TSLINK-PORTS - [0:0]\n-A TSLINK-PORTS -p udp --dport 41642 -j DNAT --to-destination 10.9.0.5:41642\n-A TSLINK-PORTS -p udp --dport 41643 -j DNAT --to-destination 10.9.0.6:41643\nCOMMIT\n');
    assert.ok(calls.some((c) => c.args.join(' ') === '-w -t nat -I PREROUTING 1 -m addrtype --dst-type LOCAL ! -i tsh+ -j TSLINK-PORTS'), 'jump only for packets to the host itself from outside');
    calls.length = 0;
    await host.syncPortForwards([{ address: parseIpv4('10.9.0.5')!, port: 41642 }]);
    assert.deepEqual(calls.map((c) => c.cmd), ['iptables-restore'], 'a Join or Leave costs one process: the jump is known to be there');
    calls.length = 0;
    await host.syncPortForwards([{ address: parseIpv4('10.9.0.5')!, port: 41642 }], { checkJump: true });
    assert.ok(calls.some((c) => c.args.includes('-C')), 'a repair pass checks the jump');
    calls.length = 0;
    await host.syncPortForwards([], { keep: true });
    assert.deepEqual(calls.map((c) => [c.cmd, c.input]), [['iptables-restore', '*nat\n:TSLINK-PORTS - [0:0]\nCOMMIT\n']], 'the last container left but networks remain: one process empties the chain, the jump stays');
    calls.length = 0;
    await host.syncPortForwards([]);
    const lines = calls.map((c) => `${c.cmd} ${c.args.join(' ')}`);
    assert.deepEqual(lines, ['iptables -w -t nat -D PREROUTING -m addrtype --dst-type LOCAL ! -i tsh+ -j TSLINK-PORTS', 'iptables -w -t nat -F TSLINK-PORTS', 'iptables -w -t nat -X TSLINK-PORTS']);
    calls.length = 0;
    await host.syncPortForwards([]);
    assert.equal(calls.length, 0, 'removed once: the next empty sync runs nothing');
    calls.length = 0;
    await new IprouteHostNetwork(run, undefined, async () => undefined, async () => '1\n').syncPortForwards([]);
    assert.ok(calls.every((c) => c.cmd !== 'iptables-restore'), 'the range off: a chain left by an earlier setting is removed, none written');
  });

  it('changes one network\'s rule alone after the first sync, and rewrites whole when that fails', async () => {
    const other = networkHost({ id: 'e'.repeat(64), subnet: '10.8.0.0/24', gateway: '10.8.0.1', mtu: 1500 });
    let failIncremental = false;
    const calls: Call[] = [];
    const run: Runner = async (cmd, args, opts?: RunOptions) => {
      calls.push({ cmd, args: [...args], input: opts?.input });
      const incremental = cmd === 'iptables-restore' && !opts?.input?.includes(':TSLINK');
      return { code: incremental && failIncremental ? 1 : 0, stdout: '', stderr: incremental && failIncremental ? 'iptables-restore: line 2 failed' : '' };
    };
    const host = new IprouteHostNetwork(run, undefined, async () => undefined, async () => '1\n');
    await host.syncRules([net]);
    calls.length = 0;
    await host.syncRules([net, other]);
    assert.equal(calls.length, 1, `one process for one network's change: ${calls.map((c) => c.cmd + ' ' + c.args.join(' ')).join(' | ')}`);
    assert.equal(calls[0]!.input, '*nat\n-A TSLINK-POSTROUTING -s 10.8.0.0/24 ! -o tsh+ -m comment --comment tslink:eeeeeeeeeeee -j MASQUERADE\nCOMMIT\n');
    calls.length = 0;
    await host.syncRules([net, other]);
    assert.equal(calls.length, 0, 'nothing changed, nothing run');
    await host.syncRules([other]);
    assert.equal(calls[0]!.input, '*nat\n-D TSLINK-POSTROUTING -s 10.9.0.0/24 ! -o tsh+ -m comment --comment tslink:ffffffffffff -j MASQUERADE\nCOMMIT\n');
    calls.length = 0;
    failIncremental = true;
    await host.syncRules([net, other]);
    const restores = calls.filter((c) => c.cmd === 'iptables-restore');
    assert.equal(restores.length, 2, 'the failed change, then a whole rewrite');
    assert.match(restores[1]!.input ?? '', /:TSLINK-POSTROUTING - \[0:0\]\n-A TSLINK-POSTROUTING -s 10\.9\.0\.0\/24[^\n]*\n-A TSLINK-POSTROUTING -s 10\.8\.0\.0\/24/);
  });

  it('adds a new network\'s rule alone in an add-only sync, and leaves removals to a remove-only one', async () => {
    const other = networkHost({ id: 'e'.repeat(64), subnet: '10.8.0.0/24', gateway: '10.8.0.1', mtu: 1500 });
    const calls: Call[] = [];
    const run: Runner = async (cmd, args, opts?: RunOptions) => {
      calls.push({ cmd, args: [...args], input: opts?.input });
      return { code: 0, stdout: '', stderr: '' };
    };
    const host = new IprouteHostNetwork(run, undefined, async () => undefined, async () => '1\n');
    await host.syncRules([net]);
    calls.length = 0;
    // `net` went, `other` came: the add-only sync adds `other` and deletes nothing.
    await host.syncRules([other], { only: 'add' });
    assert.deepEqual(calls.map((c) => c.input), ['*nat\n-A TSLINK-POSTROUTING -s 10.8.0.0/24 ! -o tsh+ -m comment --comment tslink:eeeeeeeeeeee -j MASQUERADE\nCOMMIT\n']);
    calls.length = 0;
    await host.syncRules([other], { only: 'add' });
    assert.equal(calls.length, 0, 'added once');
    await host.syncRules([other], { only: 'remove' });
    assert.deepEqual(calls.map((c) => c.input), ['*nat\n-D TSLINK-POSTROUTING -s 10.9.0.0/24 ! -o tsh+ -m comment --comment tslink:ffffffffffff -j MASQUERADE\nCOMMIT\n'], 'the remove-only sync removes what the add-only one left');
    calls.length = 0;
    await host.syncRules([], { only: 'add' });
    assert.equal(calls.length, 0, 'an add-only sync never removes the chains');
  });

  it('lets a new network\'s rule go in while another\'s slow deletion is under way, and rewrites alone', async () => {
    const other = networkHost({ id: 'e'.repeat(64), subnet: '10.8.0.0/24', gateway: '10.8.0.1', mtu: 1500 });
    const third = networkHost({ id: 'd'.repeat(64), subnet: '10.7.0.0/24', gateway: '10.7.0.1', mtu: 1500 });
    const log: string[] = [];
    let releaseDelete!: () => void;
    let failNext = false;
    const run: Runner = async (cmd, _args, opts?: RunOptions) => {
      const input = opts?.input ?? '';
      const what = input.includes(':TSLINK') ? 'rewrite' : input.includes('\n-D ') ? 'delete' : input.includes('\n-A ') ? 'add' : cmd;
      log.push(`${what} start`);
      if (what === 'delete') await new Promise<void>((r) => (releaseDelete = r));
      log.push(`${what} end`);
      if (failNext && what === 'add') {
        failNext = false;
        return { code: 1, stdout: '', stderr: 'iptables-restore: line 2 failed' };
      }
      return { code: 0, stdout: '', stderr: '' };
    };
    const host = new IprouteHostNetwork(run, undefined, async () => undefined, async () => '1\n');
    let nets = [net, other];
    await host.syncRules(() => nets);
    log.length = 0;
    nets = [other];
    const removing = host.syncRules(() => nets, { only: 'remove' });
    await new Promise((r) => setImmediate(r));
    nets = [other, third];
    await host.syncRules(() => nets, { only: 'add' });
    assert.deepEqual(log, ['delete start', 'add start', 'add end'], 'the addition did not wait for the deletion');
    releaseDelete();
    await removing;
    // A failed change is followed by a whole rewrite, which waits for the change under way.
    log.length = 0;
    nets = [third];
    const removing2 = host.syncRules(() => nets, { only: 'remove' });
    await new Promise((r) => setImmediate(r));
    failNext = true;
    nets = [third, net];
    const adding = host.syncRules(() => nets, { only: 'add' });
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(log.filter((l) => l.startsWith('rewrite')), [], 'no rewrite while the deletion is under way');
    releaseDelete();
    await Promise.all([removing2, adding]);
    assert.equal(log.filter((l) => l === 'rewrite start').length, 1);
    assert.ok(log.indexOf('rewrite start') > log.indexOf('delete end'), log.join(', '));
  });

  it('sweeps links and routes that belong to no live endpoint', async () => {
    const { run, calls } = scripted([
      [/^ip -json link show/, { stdout: JSON.stringify([{ ifname: 'eth0' }, { ifname: 'tsh1234567890ab' }, { ifname: 'tshdeadbeef000' }]) }],
      [/^ip -json route show proto 211/, { stdout: JSON.stringify([{ dst: '10.9.0.5' }, { dst: '10.9.0.77' }]) }],
    ]);
    const r = await new IprouteHostNetwork(run, undefined, async () => undefined).sweep([ep]);
    assert.deepEqual(r, { removedLinks: ['tshdeadbeef000'], removedRoutes: ['10.9.0.77'] });
    assert.ok(!calls.some((c) => c.args.includes('eth0') || c.input?.includes('eth0')));
  });
});

describe('IPv4 values', () => {
  it('splits a subnet into the two routes that outrank its on-link route', () => {
    const halves = (t: string): string[] => subnetHalves(parseNetwork(t)!);
    assert.deepEqual(halves('172.18.0.0/16'), ['172.18.0.0/17', '172.18.128.0/17']);
    assert.deepEqual(halves('10.213.0.0/24'), ['10.213.0.0/25', '10.213.0.128/25']);
    assert.deepEqual(halves('10.0.0.4/30'), ['10.0.0.4/31', '10.0.0.6/31']);
    assert.deepEqual(halves('0.0.0.0/0'), ['0.0.0.0/1', '128.0.0.0/1']);
    assert.throws(() => subnetHalves('10.0.0.1/32' as Ipv4Network));
  });

  it('accepts only canonical values: no host bits in a network, no leading zeros, no words', () => {
    assert.equal(parseNetwork('10.0.0.7/30'), undefined, 'host bits set');
    assert.equal(parseNetwork('300.0.0.0/8'), undefined);
    assert.equal(parseNetwork('localhost/24'), undefined);
    assert.equal(parseIpv4('010.0.0.1'), undefined);
    assert.equal(parseIpv4('10.0.0.1 '), undefined);
    assert.equal(parseCidr('10.0.0.1/33'), undefined);
    assert.equal(parseDockerId('ep-123'), undefined);
  });

  it('lets no space, newline or other command text through any parser (property)', () => {
    const hostile = fc.oneof(
      fc.string(),
      fc.constantFrom('10.77.0.9 dev tsh0 proto 211 scope link\nlink del victim0\nroute add default dev tsh0 #/24', '10.88.0.1 dev lo\nlink del victim2 #/24', '10.0.0.0/24\nCOMMIT\n*filter\n-I FORWARD 1 -j ACCEPT', '127.0.0.0/8 -j ACCEPT'),
      fc.tuple(fc.ipV4(), fc.string()).map(([a, tail]) => `${a}${tail}`),
    );
    fc.assert(
      fc.property(hostile, (text) => {
        for (const v of [parseIpv4(text), parseNetwork(text), parseCidr(text)?.address, parseDockerId(text)]) {
          if (v !== undefined) assert.match(String(v), /^[0-9a-f./]+$/, `parsed ${JSON.stringify(text)} to ${v}`);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses records whose values could not reach a host command as their type', () => {
    assert.throws(() => networkHost({ id: 'f'.repeat(64), subnet: '10.0.0.0/24\nCOMMIT', gateway: '10.0.0.1', mtu: 1500 }), /subnet/);
    assert.throws(() => networkHost({ id: 'f'.repeat(64), subnet: '10.0.0.0/24', gateway: '10.88.0.1 dev lo', mtu: 1500 }), /gateway/);
    assert.throws(() => networkHost({ id: 'f'.repeat(64), subnet: '10.0.0.0/24', gateway: '10.0.1.1', mtu: 1500 }), /gateway/);
    assert.throws(() => endpointHost({ id: EP_ID, address: '10.9.0.5 dev lo', hostIf: ep.hostIf, containerIf: ep.containerIf }), /address/);
    assert.throws(() => endpointHost({ id: EP_ID, address: '10.9.0.5', hostIf: 'eth0', containerIf: ep.containerIf }), /link names/);
  });
});
