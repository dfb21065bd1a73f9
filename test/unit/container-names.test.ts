/** node/container-names.ts: which containers get which name rules, as nodes come, get addresses and go. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ContainerNames } from '../../src/node/container-names.js';
import type { NodeStatus } from '../../src/node/status.js';
import { StateStore, type EndpointRecord, type NetworkRecord } from '../../src/state/store.js';
import type { Runner } from '../../src/util/exec.js';
import { captureLogger, tempDir } from './fakes.js';

const NET = 'a'.repeat(64);
const net: NetworkRecord = { id: NET, createdAt: '', subnet: '172.18.0.0/16', gateway: '172.18.0.1', mtu: 1500, name: 'tsnet', config: { ephemeral: false, mtu: 1500 } };
const epId = (i: number): string => String(i).repeat(64);
const endpoint = (i: number, magicDns?: boolean): EndpointRecord => ({
  id: epId(i), networkId: NET, address: `172.18.0.${i + 1}`, prefixLen: 16, hostIf: `tsh${String(i).repeat(12)}`, containerIf: `tsc${String(i).repeat(12)}`, createdAt: '',
  sandboxKey: `/run/docker/netns/${String(i).repeat(12)}`, joinedAt: '', containerId: 'c'.repeat(64),
  config: { hostname: `n${i}`, hostnameSource: 'label', tags: [], serve: [], direct: true, ...(magicDns === undefined ? {} : { magicDns }) },
});
const status = (i: number, over: Partial<NodeStatus> = {}): NodeStatus => ({
  endpoint: epId(i), network: NET, state: 'running', since: '', tailscaleIPs: [`100.64.0.${i}`, `fd7a:115c:a1e0::${i}`], restarts: 0, crashLoop: false, magicDnsSuffix: 'tsl.test', ...over,
});

async function setup(joinedHere: (endpoint: string) => boolean = () => false) {
  const store = new StateStore(tempDir());
  await store.load();
  await store.putNetwork(net);
  /** The rules written last, per namespace. */
  const written = new Map<string, string>();
  let saves = 0;
  const sysctls: string[] = [];
  const run: Runner = async (_cmd, args, opts) => {
    const ns = args[0]!.slice('--net='.length);
    if (args[1] === 'iptables-save') saves++;
    if (args.join(' ').includes('route_localnet')) sysctls.push(ns);
    if (args.some((a) => a.startsWith('iptables-restore'))) written.set(ns, opts?.input ?? '');
    return { code: 0, stdout: '', stderr: '' };
  };
  const names = new ContainerNames(store, run, undefined, captureLogger().log, joinedHere, undefined, 0);
  const rulesOf = (i: number): string[] => (written.get(`/run/docker/netns/${String(i).repeat(12)}`) ?? '').split('\n').filter((l) => l.includes('DNAT'));
  return { store, names, rulesOf, written, saves: () => saves, sysctls };
}

describe('container name rules', () => {
  it('each container reaches every other node of its network by its Docker address, and asks its own node for MagicDNS names', async () => {
    const { store, names, rulesOf } = await setup();
    for (const i of [1, 2, 3]) await store.putEndpoint(endpoint(i, i === 3 ? false : undefined));
    for (const i of [1, 2, 3]) names.observe(status(i));
    await names.settled();
    assert.deepEqual(rulesOf(1).filter((l) => l.includes('-d 172')), ['-A TSLINK-OUTPUT -d 172.18.0.3/32 -j DNAT --to-destination 100.64.0.2', '-A TSLINK-OUTPUT -d 172.18.0.4/32 -j DNAT --to-destination 100.64.0.3']);
    assert.ok(rulesOf(1).some((l) => l.includes('100.100.100.100')));
    assert.ok(!rulesOf(3).some((l) => l.includes('100.100.100.100')), 'tslink.magicdns=false: no DNS redirect');
    assert.equal(rulesOf(3).filter((l) => l.includes('-d 172')).length, 2, 'but its peers are reached over the tailnet all the same');
  });

  it('the network option turns MagicDNS off unless the container\'s label turns it on', async () => {
    const { store, names, rulesOf } = await setup();
    await store.putNetwork({ ...net, config: { ...net.config, magicDns: false } });
    await store.putEndpoint(endpoint(1));
    await store.putEndpoint(endpoint(2, true));
    names.observe(status(1));
    names.observe(status(2));
    await names.settled();
    assert.ok(!rulesOf(1).some((l) => l.includes('100.100.100.100')));
    assert.ok(rulesOf(2).some((l) => l.includes('100.100.100.100')));
  });

  it('a node without an address yet is no destination; a node that leaves is none any more', async () => {
    const { store, names, rulesOf } = await setup();
    for (const i of [1, 2]) await store.putEndpoint(endpoint(i));
    names.observe(status(1));
    names.observe(status(2, { state: 'starting', tailscaleIPs: [], magicDnsSuffix: undefined }));
    await names.settled();
    assert.equal(rulesOf(1).filter((l) => l.includes('-d 172')).length, 0);
    assert.ok(!rulesOf(2).some((l) => l.includes('100.100.100.100')), 'no suffix known yet');
    names.observe(status(2));
    await names.settled();
    assert.equal(rulesOf(1).filter((l) => l.includes('-d 172')).length, 1);
    names.observe(status(2, { state: 'stopped' }));
    await names.settled();
    assert.equal(rulesOf(1).filter((l) => l.includes('-d 172')).length, 0, 'its Docker address may go to another container next');
  });

  it('writes only what changed: a poll with the same addresses writes nothing', async () => {
    const { store, names, saves } = await setup();
    await store.putEndpoint(endpoint(1));
    names.observe(status(1));
    await names.settled();
    const before = saves();
    names.observe(status(1, { lastError: 'x' }));
    await names.settled();
    assert.equal(saves(), before);
    await names.repair();
    assert.equal(saves(), before + 1, 'a repair reads each container once');
  });

  it('a container set up once gets later changes in one command; MagicDNS arriving later gets its sysctl in that command', async () => {
    const { store, names, saves, sysctls, written } = await setup();
    for (const i of [1, 2]) await store.putEndpoint(endpoint(i));
    names.observe(status(1, { magicDnsSuffix: undefined }));
    await names.settled();
    assert.equal(saves(), 1);
    assert.deepEqual(sysctls, []);
    names.observe(status(2));
    await names.settled();
    assert.equal(saves(), 2, 'endpoint 2 is new: read first; endpoint 1 only gets its chains');
    const restores = [...written.keys()].length;
    names.observe(status(1));
    await names.settled();
    assert.equal(saves(), 2, 'MagicDNS on now: the chains and route_localnet in one command, nothing read');
    assert.equal(sysctls.length, 2);
    assert.equal([...written.keys()].length, restores);
  });

  it('a new container with nothing to redirect yet gets no rules until its first name; one found at a restart is written all the same', async () => {
    const { store, names, written, sysctls } = await setup((id) => id === epId(1));
    for (const i of [1, 2]) await store.putEndpoint(endpoint(i, false));
    const early = { state: 'starting' as const, tailscaleIPs: [], magicDnsSuffix: undefined };
    names.observe(status(1, early));
    names.observe(status(2, early));
    await names.settled();
    assert.deepEqual([...written.keys()], [`/run/docker/netns/${'2'.repeat(12)}`], 'endpoint 2 was joined before this process: its namespace may hold old peers, rewritten');
    await store.putEndpoint(endpoint(1));
    names.observe(status(1));
    await names.settled();
    assert.ok(written.has(`/run/docker/netns/${'1'.repeat(12)}`), 'its MagicDNS suffix known: written');
    assert.deepEqual(sysctls, [`/run/docker/netns/${'1'.repeat(12)}`]);
  });

  it('a container Docker joined while this process ran is written without a read first; one found at a restart is read first', async () => {
    const { store, names, saves, written, sysctls } = await setup((id) => id === epId(1));
    for (const i of [1, 2]) await store.putEndpoint(endpoint(i));
    names.observe(status(1));
    await names.settled();
    assert.equal(saves(), 0, 'a new namespace holds no rules of ours');
    const fresh = written.get(`/run/docker/netns/${'1'.repeat(12)}`) ?? '';
    for (const jump of ['-I OUTPUT 1 -j TSLINK-OUTPUT', '-I POSTROUTING 1 -j TSLINK-POSTROUTING', '-I PREROUTING 1 -j TSLINK-PREROUTING']) assert.ok(fresh.includes(jump), jump);
    assert.deepEqual(sysctls, [`/run/docker/netns/${'1'.repeat(12)}`], 'route_localnet comes with the rules, in the same command');
    names.observe(status(2));
    await names.settled();
    assert.equal(saves(), 1, 'endpoint 2 was joined before this process: read first');
    names.observe(status(1, { state: 'stopped' }));
    names.observe(status(1));
    await names.settled();
    assert.equal(saves(), 2, 'endpoint 1 started again in the same namespace: its rules are there, read first');
  });
});
