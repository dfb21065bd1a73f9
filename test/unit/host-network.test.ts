import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { RunOptions, Runner } from '../../src/util/exec.js';
import { IprouteHostNetwork, linkNames } from '../../src/host/network.js';
import type { EndpointRecord, NetworkRecord } from '../../src/state/store.js';

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

const net: NetworkRecord = {
  id: 'f'.repeat(64),
  createdAt: '',
  subnet: '10.9.0.0/24',
  gateway: '10.9.0.1',
  mtu: 1400,
  config: { ephemeral: false, mtu: 1400 } as NetworkRecord['config'],
};
const ep: EndpointRecord = { id: '1234567890ab' + 'c'.repeat(52), networkId: net.id, address: '10.9.0.5', prefixLen: 24, ...linkNames('1234567890ab' + 'c'.repeat(52)), createdAt: '' };

describe('host network', () => {
  it('turns forwarding on only when off, and says how when it cannot', async () => {
    const { run } = scripted([[/-C /, { code: 0 }]]);
    const writes: string[] = [];
    await new IprouteHostNetwork(run, async (p) => void writes.push(p), async () => '0\n').syncRules([net]);
    assert.deepEqual(writes, ['/proc/sys/net/ipv4/ip_forward']);
    const ro = new IprouteHostNetwork(run, async () => { throw new Error('EROFS: read-only file system'); }, async () => '0\n');
    await assert.rejects(ro.syncRules([net]), /sysctl -w net\.ipv4\.ip_forward=1/);
  });

  it('names links within the 15-byte limit with the tslink prefixes', () => {
    const n = linkNames('0123456789abcdef'.repeat(4));
    assert.deepEqual(n, { hostIf: 'tsh0123456789ab', containerIf: 'tsc0123456789ab' });
    assert.ok(n.hostIf.length <= 15 && n.containerIf.length <= 15);
  });

  it('makes the endpoint with one idempotent ip batch, without any sysctl', async () => {
    const { run, calls } = scripted([]);
    const sysctls: [string, string][] = [];
    const host = new IprouteHostNetwork(run, async (p, v) => void sysctls.push([p, v]), async () => '1\n');
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
    await new IprouteHostNetwork(again.run, async () => undefined).setUpEndpoint(net, ep);
    const broken = scripted([[/^ip -force -batch/, { code: 1, stderr: 'RTNETLINK answers: File exists\nCommand failed -:1\nError: Nexthop has invalid gateway.\nCommand failed -:5\n' }]]);
    await assert.rejects(new IprouteHostNetwork(broken.run, async () => undefined).setUpEndpoint(net, ep), /Nexthop has invalid gateway/);
  });

  it('treats a link that is already gone as torn down, and other failures as failures', async () => {
    const gone = scripted([[/^ip link del/, { code: 1, stderr: 'Cannot find device "tsh1234567890ab"' }]]);
    await new IprouteHostNetwork(gone.run, async () => undefined).tearDownEndpoint(ep);
    const broken = scripted([[/^ip link del/, { code: 2, stderr: 'RTNETLINK answers: Operation not permitted' }]]);
    await assert.rejects(new IprouteHostNetwork(broken.run, async () => undefined).tearDownEndpoint(ep), /Operation not permitted/);
  });

  it('rewrites its chains whole, jumps once, and removes everything with the last network', async () => {
    const { run, calls } = scripted([[/-C FORWARD/, { code: 1 }], [/-C POSTROUTING/, { code: 0 }], [/ -D /, { code: 1 }]]);
    const writes: string[] = [];
    const host = new IprouteHostNetwork(run, async (p) => void writes.push(p), async () => '1\n');
    await host.syncRules([net]);
    assert.deepEqual(writes, [], 'forwarding already on: nothing written');
    const restore = calls.find((c) => c.cmd === 'iptables-restore');
    assert.deepEqual(restore?.args, ['-w', '--noflush']);
    assert.match(restore?.input ?? '', /:TSLINK-FORWARD - \[0:0\]/);
    assert.match(restore?.input ?? '', /-i tsh\+ -o tsh\+ -p udp --dport 41641 -j ACCEPT/);
    assert.match(restore?.input ?? '', /-s 10\.9\.0\.0\/24 ! -o tsh\+ -m comment --comment tslink:ffffffffffff -j MASQUERADE/);
    assert.ok(calls.some((c) => c.args.join(' ') === '-w -t filter -I FORWARD 1 -j TSLINK-FORWARD'));
    assert.ok(!calls.some((c) => c.args.join(' ') === '-w -t nat -I POSTROUTING 1 -j TSLINK-POSTROUTING'));
    calls.length = 0;
    await host.syncRules([]);
    const lines = calls.map((c) => `${c.cmd} ${c.args.join(' ')}`);
    assert.ok(lines.includes('iptables -w -t filter -X TSLINK-FORWARD'));
    assert.ok(lines.includes('iptables -w -t nat -X TSLINK-POSTROUTING'));
  });

  it('sweeps links and routes that belong to no live endpoint', async () => {
    const { run, calls } = scripted([
      [/^ip -json link show/, { stdout: JSON.stringify([{ ifname: 'eth0' }, { ifname: 'tsh1234567890ab' }, { ifname: 'tshdeadbeef000' }]) }],
      [/^ip -json route show proto 211/, { stdout: JSON.stringify([{ dst: '10.9.0.5' }, { dst: '10.9.0.77' }]) }],
    ]);
    const r = await new IprouteHostNetwork(run, async () => undefined).sweep([ep]);
    assert.deepEqual(r, { removedLinks: ['tshdeadbeef000'], removedRoutes: ['10.9.0.77'] });
    assert.ok(!calls.some((c) => c.args.includes('eth0')));
  });
});

describe('subnet halves', () => {
  it('splits a subnet into the two routes that outrank its on-link route', async () => {
    const { subnetHalves } = await import('../../src/host/ipv4.js');
    assert.deepEqual(subnetHalves('172.18.0.0/16'), ['172.18.0.0/17', '172.18.128.0/17']);
    assert.deepEqual(subnetHalves('10.213.0.0/24'), ['10.213.0.0/25', '10.213.0.128/25']);
    assert.deepEqual(subnetHalves('10.0.0.7/30'), ['10.0.0.4/31', '10.0.0.6/31']);
    assert.deepEqual(subnetHalves('0.0.0.0/0'), ['0.0.0.0/1', '128.0.0.0/1']);
    assert.throws(() => subnetHalves('10.0.0.1/32'));
    assert.throws(() => subnetHalves('300.0.0.0/8'));
  });
});
