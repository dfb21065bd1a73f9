import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RestartPolicy } from '../../src/node/restart-policy.js';
import { IdentityLocks } from '../../src/node/identity-locks.js';
import { serveArgs, upArgs } from '../../src/node/tailscale-cli.js';
import { KeyedMutex } from '../../src/util/keyed-mutex.js';

describe('restart policy', () => {
  it('doubles from 100 ms to 30 s', () => {
    const p = new RestartPolicy({ initialMs: 100, maxMs: 30_000, stableMs: 30_000, loopCrashes: 1000, loopWindowMs: 1, cooldownMs: 1 });
    const delays: number[] = [];
    let t = 0;
    for (let i = 0; i < 12; i++) {
      const d = p.onExit(t, t + 1);
      t += 10_000;
      delays.push(d.delayMs);
    }
    assert.deepEqual(delays, [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000]);
  });

  it('resets after 30 s of stable running', () => {
    const p = new RestartPolicy();
    assert.equal(p.onExit(0, 1000).delayMs, 100);
    assert.equal(p.onExit(1000, 2000).delayMs, 200, 'a quick crash doubles');
    assert.equal(p.onExit(2000, 40_000).delayMs, 100, 'a long run resets');
  });

  it('calls five crashes within 30 s a crash loop with a cooldown', () => {
    const p = new RestartPolicy();
    const kinds = [0, 1, 2, 3, 4].map((i) => p.onExit(i * 1000, i * 1000 + 500));
    assert.deepEqual(kinds.map((k) => k.kind), ['retry', 'retry', 'retry', 'retry', 'crash-loop']);
    assert.equal(kinds[4]!.delayMs, 5 * 60_000);
  });

  it('does not count crashes spread wider than 30 s as a loop', () => {
    const p = new RestartPolicy();
    const kinds = [0, 1, 2, 3, 4, 5, 6].map((i) => p.onExit(i * 10_000, i * 10_000 + 9_000).kind);
    assert.ok(!kinds.includes('crash-loop'));
  });
});

describe('identity locks', () => {
  it('gives a hostname to one endpoint and queues the rest in order', () => {
    const l = new IdentityLocks();
    assert.equal(l.claim('web', 'e1'), 'e1');
    assert.equal(l.claim('web', 'e2'), 'e1');
    assert.equal(l.claim('web', 'e3'), 'e1');
    assert.equal(l.claim('db', 'e4'), 'e4');
    assert.equal(l.release('web', 'e1'), 'e2');
    assert.equal(l.holder('web'), 'e2');
    assert.equal(l.release('web', 'e3'), undefined, 'a waiter leaving releases nothing');
    assert.equal(l.release('web', 'e2'), undefined);
    assert.equal(l.holder('web'), undefined);
  });
});

describe('tailscale CLI arguments', () => {
  it('always passes the full set with --reset, DNS off, a timeout, and the key only as a file', () => {
    const off = ['--accept-routes=false', '--advertise-exit-node=false', '--advertise-routes=', '--exit-node='];
    assert.deepEqual(upArgs({ hostname: 'web', tags: ['tag:web', 'tag:x'], loginServer: 'https://hs.example', keyOnStdin: true, timeoutSec: 60 }), [
      'up', '--reset', '--hostname=web', '--accept-dns=false', '--timeout=60s', '--advertise-tags=tag:web,tag:x', ...off, '--login-server=https://hs.example', '--auth-key=file:/dev/stdin',
    ]);
    assert.deepEqual(upArgs({ hostname: 'a', tags: [], timeoutSec: 5 }), ['up', '--reset', '--hostname=a', '--accept-dns=false', '--timeout=5s', '--advertise-tags=', ...off]);
  });

  it('maps each serve rule to one serve command, node or Service', () => {
    const https = { port: 443, proto: 'https' as const, target: { host: '127.0.0.1', port: 8080 }, path: '/api', acceptAppCaps: ['example.com/cap/x'] };
    assert.deepEqual(serveArgs(https), ['serve', '--bg', '--yes', '--https=443', '--set-path=/api', '--accept-app-caps=example.com/cap/x', 'http://127.0.0.1:8080']);
    const tcp = { port: 5432, proto: 'tcp' as const, target: { host: '127.0.0.1', port: 5432 }, proxyProtocol: 2 as const };
    assert.deepEqual(serveArgs(tcp, 'svc:db'), ['serve', '--bg', '--yes', '--service=svc:db', '--tcp=5432', '--proxy-protocol=2', 'tcp://127.0.0.1:5432']);
    const tun = { port: 1, proto: 'tun' as const, target: { host: '127.0.0.1', port: 1 } };
    assert.deepEqual(serveArgs(tun, 'svc:vpn'), ['serve', '--bg', '--yes', '--service=svc:vpn', '--tun']);
  });
});

describe('keyed mutex', () => {
  it('serialises one key and lets others run', async () => {
    const m = new KeyedMutex();
    const order: string[] = [];
    let releaseA!: () => void;
    const a = m.run('x', () => new Promise<void>((r) => (releaseA = () => (order.push('a'), r()))));
    const b = m.run('x', async () => void order.push('b'));
    const c = m.run('y', async () => void order.push('c'));
    await c;
    assert.deepEqual(order, ['c']);
    releaseA();
    await Promise.all([a, b]);
    assert.deepEqual(order, ['c', 'a', 'b']);
    await assert.rejects(m.run('x', async () => { throw new Error('e'); }));
    assert.equal(await m.run('x', async () => 7), 7, 'a failure does not poison the key');
  });
});

describe('node spec', () => {
  it('lets the network\'s tags win and takes ephemerality from the network or the key', async () => {
    const { nodeSpec } = await import('../../src/node/node-config.js');
    const ep = {
      id: 'e'.repeat(64), networkId: 'n'.repeat(64), address: '10.0.0.2', prefixLen: 24, hostIf: 'tshx', containerIf: 'tscx', createdAt: '',
      sandboxKey: '/run/docker/netns/x',
      config: { hostname: 'web', hostnameSource: 'label' as const, tags: ['tag:mine'], serve: [], direct: true },
    };
    const net = { id: 'n'.repeat(64), createdAt: '', subnet: '10.0.0.0/24', gateway: '10.0.0.1', mtu: 1500, config: { ephemeral: false, mtu: 1500 } };
    assert.deepEqual(nodeSpec(ep, net)?.tags, ['tag:mine']);
    assert.deepEqual(nodeSpec(ep, { ...net, config: { ...net.config, tags: ['tag:net'] } })?.tags, ['tag:net']);
    assert.equal(nodeSpec(ep, net, 'tskey-auth-x')?.ephemeral, false);
    assert.equal(nodeSpec(ep, net, 'tskey-client-x?ephemeral=true&preauthorized=true')?.ephemeral, true);
    assert.equal(nodeSpec(ep, { ...net, config: { ...net.config, ephemeral: true } })?.ephemeral, true);
    assert.equal(nodeSpec({ ...ep, sandboxKey: undefined }, net), undefined, 'not joined: no node');
  });
});

describe('login keys and up failures (issue 21)', () => {
  it('fills in an OAuth secret\'s missing attributes from the network: the real CLI makes a node ephemeral by default (defect 3)', async () => {
    const { loginKey } = await import('../../src/node/node-config.js');
    assert.equal(loginKey('tskey-client-abc', false), 'tskey-client-abc?ephemeral=false&preauthorized=true');
    assert.equal(loginKey('tskey-client-abc?preauthorized=true', false), 'tskey-client-abc?preauthorized=true&ephemeral=false');
    assert.equal(loginKey('tskey-client-abc?preauthorized=true', true), 'tskey-client-abc?preauthorized=true&ephemeral=true');
    assert.equal(loginKey('tskey-client-abc?ephemeral=true', false), 'tskey-client-abc?ephemeral=true&preauthorized=true', 'the secret\'s own choice stands');
    assert.equal(loginKey('tskey-auth-abc', true), 'tskey-auth-abc', 'a plain key carries its kind');
    assert.equal(loginKey('hskey-auth-abc', true), 'hskey-auth-abc');
  });

  it('calls refused tags a tag problem, not a refused key (defect 7)', async () => {
    const { classifyUpFailure } = await import('../../src/node/node-config.js');
    const tags = classifyUpFailure('backend error: requested tags [tag:web] are invalid or not permitted');
    assert.equal(tags.state, 'failed');
    assert.match(tags.hint ?? '', /refused these tags/);
    assert.equal(classifyUpFailure('backend error: invalid key: unable to validate API key').state, 'logged-out');
  });
});

describe('serve plan', () => {
  it('drains a Service the node no longer backs before it resets and applies the rules', async () => {
    const { servePlan } = await import('../../src/node/node-config.js');
    const rule = { port: 443, proto: 'https' as const, target: { host: '127.0.0.1', port: 8080 } };
    assert.deepEqual(servePlan({ serve: [rule], service: 'svc:new', direct: false }, 'svc:old').map((s) => s.args.join(' ')), [
      'serve drain svc:old',
      'serve reset',
      'serve --bg --yes --service=svc:new --https=443 http://127.0.0.1:8080',
      'serve advertise svc:new',
    ]);
    assert.deepEqual(servePlan({ serve: [], service: undefined, direct: true }, 'svc:old').map((s) => s.args.join(' ')), ['serve drain svc:old', 'serve reset']);
    assert.equal(servePlan({ serve: [rule], service: 'svc:new', direct: false }, 'svc:new')[0]!.what, 'serve reset', 'the same Service is not drained');
  });
});

/** A node manager on an empty data directory, with no usable Tailscale (a start records a failed status). */
async function managerWithoutTailscale() {
  const { NodeManager } = await import('../../src/node/manager.js');
  const { StateStore } = await import('../../src/state/store.js');
  const { captureLogger, tempDir, testSettings } = await import('./fakes.js');
  const dir = tempDir();
  const store = new StateStore(dir);
  await store.load();
  const nodes = new NodeManager(store, testSettings({ dataDir: dir }), async () => ({ code: 0, stdout: '', stderr: '' }), new Error('none'), captureLogger().log);
  return { dir, store, nodes };
}

describe('garbage collection', () => {
  it('removes what no endpoint uses and a killed write\'s temp file, never a write in flight or a persistent identity', async () => {
    const { mkdirSync, writeFileSync, existsSync, readdirSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { writeFileAtomic } = await import('../../src/util/atomic-file.js');
    const { dir, nodes } = await managerWithoutTailscale();
    for (const d of ['status', 'run/abcdefabcdef', 'by-hostname/eph', 'by-hostname/keep']) mkdirSync(join(dir, d), { recursive: true });
    writeFileSync(join(dir, 'status', 'f'.repeat(64) + '.json'), '{}');
    writeFileSync(join(dir, 'status', '.1234.5.tmp'), '{}'); // a plugin killed between write and rename
    writeFileSync(join(dir, 'by-hostname/eph/tslink-node.json'), JSON.stringify({ ephemeral: true }));
    writeFileSync(join(dir, 'by-hostname/keep/tslink-node.json'), JSON.stringify({ ephemeral: false }));
    // A write of this process under way while the collection runs: its temp file must survive.
    const live = join(dir, 'status', 'e'.repeat(64) + '.json');
    const body = 'x'.repeat(64 << 20);
    const writing = writeFileAtomic(live, body, 0o600, { durable: false });
    while (!readdirSync(join(dir, 'status')).some((n) => n.startsWith(`.${process.pid}.`))) await new Promise((r) => setImmediate(r));
    const removed = (await nodes.collectGarbage()).sort();
    await writing; // its rename fails (ENOENT) if the collection took its temp file
    assert.deepEqual(removed.filter((r) => !r.endsWith('e'.repeat(64) + '.json')), ['by-hostname/eph', 'run/abcdefabcdef', 'status/.1234.5.tmp', `status/${'f'.repeat(64)}.json`]);
    assert.ok(existsSync(join(dir, 'by-hostname/keep')), 'a persistent identity is never deleted');
  });
});

describe('node identities (issue 22)', () => {
  it('are scoped by the network\'s name, falling back to its ID when Docker gave no usable name', async () => {
    const { identityDir } = await import('../../src/node/identity-dir.js');
    assert.equal(identityDir('/d', { id: 'n1', name: 'web_default' }, 'x'), '/d/identities/web_default/x');
    assert.notEqual(identityDir('/d', { id: 'n1', name: 'a' }, 'x'), identityDir('/d', { id: 'n2', name: 'b' }, 'x'), 'two networks, two identities of one hostname');
    for (const name of ['..', '.', 'a/b', '', '-x', 'x'.repeat(300)]) assert.equal(identityDir('/d', { id: 'n1', name }, 'x'), '/d/identities/n1/x', `name ${JSON.stringify(name)} is no path step`);
  });

  it('garbage collection removes an unused ephemeral identity under its network, never a persistent one', async () => {
    const { mkdirSync, writeFileSync, existsSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { dir, nodes } = await managerWithoutTailscale();
    for (const d of ['identities/a/eph', 'identities/a/keep', 'identities/b/eph']) mkdirSync(join(dir, d), { recursive: true });
    writeFileSync(join(dir, 'identities/a/eph/tslink-node.json'), JSON.stringify({ ephemeral: true }));
    writeFileSync(join(dir, 'identities/b/eph/tslink-node.json'), JSON.stringify({ ephemeral: true }));
    writeFileSync(join(dir, 'identities/a/keep/tslink-node.json'), JSON.stringify({ ephemeral: false }));
    const removed = (await nodes.collectGarbage()).sort();
    assert.deepEqual(removed, ['identities/a/eph', 'identities/b/eph']);
    assert.ok(existsSync(join(dir, 'identities/a/keep')));
    assert.ok(!existsSync(join(dir, 'identities/b')), 'an emptied network directory goes too');
  });
});

describe('node manager', () => {
  it('starts no node for an endpoint whose Leave has begun, until Docker joins it again', async () => {
    const { store, nodes } = await managerWithoutTailscale();
    const net = { id: 'n'.repeat(64), createdAt: '', subnet: '10.0.0.0/24', gateway: '10.0.0.1', mtu: 1500, config: { ephemeral: false, mtu: 1500 } };
    const ep = {
      id: 'e'.repeat(64), networkId: net.id, address: '10.0.0.2', prefixLen: 24, hostIf: 'tshx', containerIf: 'tscx', createdAt: '',
      sandboxKey: '/run/docker/netns/x', joinedAt: new Date().toISOString(), containerId: 'c'.repeat(64),
      config: { hostname: 'web', hostnameSource: 'label' as const, tags: [], serve: [], direct: true },
    };
    await store.putNetwork(net);
    await store.putEndpoint(ep);
    // No usable tailscale: a start shows as a failed status, which is what this test watches for.
    const { EndpointSessions } = await import('../../src/state/endpoint-sessions.js');
    const sessions = new EndpointSessions();
    const first = sessions.join(ep.id);
    sessions.leave(ep.id);
    await nodes.leave(ep.id);
    await nodes.ready(ep, net, first);
    assert.equal(nodes.statuses.get(ep.id), undefined, 'a start decided before the Leave does nothing');
    const second = sessions.join(ep.id);
    await nodes.ready(ep, net, first);
    assert.equal(nodes.statuses.get(ep.id), undefined, 'nor does a start of the ended session after a new Join');
    await nodes.ready(ep, net, second);
    assert.equal(nodes.statuses.get(ep.id)?.state, 'failed', 'a new Join may start it');
    await store.patchEndpoint(ep.id, { joinedAt: undefined });
    sessions.delete(ep.id);
    await nodes.forget(ep.id);
    await nodes.ready(ep, net, second);
    assert.equal(nodes.statuses.get(ep.id), undefined, 'nor does a start after the record is gone');
  });
});
