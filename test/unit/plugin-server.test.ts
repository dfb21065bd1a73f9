import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Driver } from '../../src/driver/driver.js';
import { BODY_LIMIT, buildServer, CONTENT_TYPE } from '../../src/driver/server.js';
import { StateStore } from '../../src/state/store.js';
import { testSettings, FakeHostNetwork, KEY, NET_ID, EP_ID, captureLogger, createNetworkBody, tempDir } from './fakes.js';

const CALLS = [
  'Plugin.Activate', 'NetworkDriver.GetCapabilities', 'NetworkDriver.CreateNetwork', 'NetworkDriver.DeleteNetwork',
  'NetworkDriver.AllocateNetwork', 'NetworkDriver.FreeNetwork', 'NetworkDriver.CreateEndpoint',
  'NetworkDriver.DeleteEndpoint', 'NetworkDriver.EndpointOperInfo', 'NetworkDriver.Join', 'NetworkDriver.Leave',
  'NetworkDriver.DiscoverNew', 'NetworkDriver.DiscoverDelete', 'NetworkDriver.ProgramExternalConnectivity',
  'NetworkDriver.RevokeExternalConnectivity',
];

async function setup(env: { authKey?: string } = { authKey: KEY }) {
  const dataDir = tempDir();
  const store = new StateStore(dataDir);
  await store.load();
  const host = new FakeHostNetwork();
  const { log, lines } = captureLogger();
  const driver = new Driver(store, host, testSettings({ dataDir, ...env }), log);
  const app = buildServer(driver, log);
  await app.ready();
  const call = async (path: string, payload?: unknown, raw?: string) => {
    const r = await app.inject({
      method: 'POST',
      url: `/${path}`,
      headers: { 'content-type': 'application/json' },
      payload: raw ?? (payload === undefined ? '' : JSON.stringify(payload)),
    });
    return { status: r.statusCode, type: r.headers['content-type'], body: JSON.parse(r.body) as Record<string, unknown> };
  };
  return { app, store, host, call, lines, dataDir };
}

describe('plugin server', () => {
  it('counts unknown calls as one series, whatever their names (issue 22)', async () => {
    const { Metrics } = await import('../../src/ops/metrics.js');
    const metrics = new Metrics();
    const dataDir = tempDir();
    const store = new StateStore(dataDir);
    await store.load();
    const { log } = captureLogger();
    const app = buildServer(new Driver(store, new FakeHostNetwork(), testSettings({ dataDir, authKey: KEY }), log), log, (u, st, sec) => metrics.request(u, st, sec));
    await app.ready();
    for (let i = 0; i < 300; i++) await app.inject({ method: 'POST', url: `/NetworkDriver.Unknown${String.fromCharCode(65 + (i % 26))}${String.fromCharCode(65 + Math.floor(i / 26))}`, payload: '{}', headers: { 'content-type': 'application/json' } });
    await app.inject({ method: 'POST', url: '/NetworkDriver.GetCapabilities', payload: '{}', headers: { 'content-type': 'application/json' } });
    const text = await metrics.registry.getSingleMetricAsString('tslink_driver_request_duration_seconds');
    const calls = new Set([...text.matchAll(/call="([^"]+)"/g)].map((m) => m[1]));
    assert.deepEqual([...calls].sort(), ['NetworkDriver.GetCapabilities', 'other']);
    await app.close();
  });

  it('activates as a NetworkDriver with the plugin content type', async () => {
    const { call } = await setup();
    const r = await call('Plugin.Activate');
    assert.equal(r.status, 200);
    assert.equal(r.type, CONTENT_TYPE);
    assert.deepEqual(r.body, { Implements: ['NetworkDriver'] });
    assert.deepEqual((await call('NetworkDriver.GetCapabilities')).body, { Scope: 'local', ConnectivityScope: 'local' });
  });

  for (const path of CALLS.filter((c) => !['Plugin.Activate', 'NetworkDriver.GetCapabilities'].includes(c))) {
    it(`${path}: broken bodies get a JSON Err and the server stays up`, async () => {
      const { call } = await setup();
      for (const raw of ['{', 'not json', '[1,2', '"\\u12"']) {
        const r = await call(path, undefined, raw);
        assert.equal(r.status, 400, `${path} ${raw}`);
        assert.match(String(r.body['Err']), /^tslink: the request body is not valid JSON/);
      }
      const wrongType = await call(path, { NetworkID: 42, EndpointID: [], SandboxKey: 1, DiscoveryType: 'x' });
      assert.equal(wrongType.status, 400);
      assert.match(String(wrongType.body['Err']), /^tslink: invalid .* request: /);
      const missing = await call(path, {});
      assert.equal(missing.status, 400);
      assert.match(String(missing.body['Err']), /is missing/);
      const big = await call(path, undefined, JSON.stringify({ NetworkID: 'x'.repeat(BODY_LIMIT + 10) }));
      assert.equal(big.status, 413);
      assert.match(String(big.body['Err']), new RegExp(`^tslink: the request body is larger than ${BODY_LIMIT} bytes`));
      assert.equal((await call('Plugin.Activate')).status, 200, 'still answering');
    });
  }

  it('names the field that is wrong', async () => {
    const { call } = await setup();
    const r = await call('NetworkDriver.Join', { NetworkID: NET_ID, EndpointID: '../../etc', SandboxKey: '/x' });
    assert.equal(r.status, 400);
    assert.match(String(r.body['Err']), /\/EndpointID must match pattern/);
  });

  it('answers unknown paths with 404 and a JSON Err', async () => {
    const { app } = await setup();
    const r = await app.inject({ method: 'GET', url: '/nope' });
    assert.equal(r.statusCode, 404);
    assert.match((JSON.parse(r.body) as { Err: string }).Err, /^tslink: GET \/nope is not a call/);
    assert.equal(r.headers['content-type'], CONTENT_TYPE);
  });

  it('runs the whole lifecycle and repeats deletes harmlessly', async () => {
    const { call, host, store } = await setup();
    assert.equal((await call('NetworkDriver.CreateNetwork', createNetworkBody())).status, 200);
    const ep = { NetworkID: NET_ID, EndpointID: EP_ID };
    assert.equal((await call('NetworkDriver.CreateEndpoint', { ...ep, Interface: { Address: '172.18.0.2/16', AddressIPv6: '', MacAddress: '' } })).status, 200);
    const join = await call('NetworkDriver.Join', { ...ep, SandboxKey: '/var/run/docker/netns/0123456789ab', Options: {} });
    assert.equal(join.status, 200);
    assert.deepEqual(join.body, {
      InterfaceName: { SrcName: `tsc${EP_ID.slice(0, 12)}`, DstPrefix: 'eth' },
      Gateway: '172.18.0.1',
      StaticRoutes: [
        { Destination: '172.18.0.1/32', RouteType: 1 },
        { Destination: '172.18.0.0/17', RouteType: 0, NextHop: '172.18.0.1' },
        { Destination: '172.18.128.0/17', RouteType: 0, NextHop: '172.18.0.1' },
      ],
      DisableGatewayService: true,
    });
    assert.ok(host.links.has(`tsh${EP_ID.slice(0, 12)}`));
    const info = await call('NetworkDriver.EndpointOperInfo', ep);
    assert.equal((info.body['Value'] as Record<string, unknown>)['address'], '172.18.0.2/16');
    for (let i = 0; i < 2; i++) {
      assert.equal((await call('NetworkDriver.Leave', ep)).status, 200);
      assert.equal((await call('NetworkDriver.DeleteEndpoint', ep)).status, 200);
      assert.equal((await call('NetworkDriver.DeleteNetwork', { NetworkID: NET_ID })).status, 200);
    }
    assert.equal(host.links.size, 0);
    assert.equal(store.networks.size, 0);
    assert.deepEqual(host.ruleSyncs.at(-1), []);
    // The two lanes: a new network's rules are only added, a removed one's only removed.
    assert.deepEqual(host.lanes.map((l) => l.lane), ['add', 'remove'], 'one sync per lane, no full rewrite');
    assert.deepEqual(host.lanes[0]!.nets, [NET_ID], 'the add lane sees the new network');
    assert.deepEqual(host.lanes[1]!.nets, [], 'the remove lane no longer sees the deleted one');
  });

  it('refuses unknown networks and endpoints with 404 and what to do', async () => {
    const { call } = await setup();
    const r = await call('NetworkDriver.CreateEndpoint', { NetworkID: NET_ID, EndpointID: EP_ID, Interface: { Address: '172.18.0.2/16' } });
    assert.equal(r.status, 404);
    assert.match(String(r.body['Err']), /^tslink: network aaaaaaaaaaaa is not known to this plugin .*remove the network and create it again/);
    await call('NetworkDriver.CreateNetwork', createNetworkBody());
    const j = await call('NetworkDriver.Join', { NetworkID: NET_ID, EndpointID: EP_ID, SandboxKey: '/var/run/docker/netns/0123456789ab' });
    assert.equal(j.status, 404);
    assert.match(String(j.body['Err']), /endpoint bbbbbbbbbbbb on network aaaaaaaaaaaa is not known/);
  });

  it('refuses a network without any auth key, naming both ways to give one', async () => {
    const { call } = await setup({});
    const r = await call('NetworkDriver.CreateNetwork', createNetworkBody());
    assert.equal(r.status, 400);
    assert.match(String(r.body['Err']), /tslink\.authkey/);
    assert.match(String(r.body['Err']), /TS_AUTHKEY/);
  });

  it('refuses --internal, IPv6 and several subnets with a reason', async () => {
    const { call } = await setup();
    const internal = createNetworkBody();
    (internal.Options as Record<string, unknown>)['com.docker.network.internal'] = true;
    assert.match(String((await call('NetworkDriver.CreateNetwork', internal)).body['Err']), /--internal/);
    const v6 = { ...createNetworkBody(), IPv6Data: [{ Pool: 'fd00::/64', Gateway: 'fd00::1/64' }] };
    assert.match(String((await call('NetworkDriver.CreateNetwork', v6)).body['Err']), /IPv6/);
    const two = createNetworkBody();
    two.IPv4Data.push({ AddressSpace: 'x', Gateway: '10.0.0.1/24', Pool: '10.0.0.0/24' });
    assert.match(String((await call('NetworkDriver.CreateNetwork', two)).body['Err']), /exactly one IPv4 subnet, got 2/);
    const tiny = { ...createNetworkBody(), IPv4Data: [{ AddressSpace: 'x', Gateway: '10.0.0.1/32', Pool: '10.0.0.1/32' }] };
    assert.match(String((await call('NetworkDriver.CreateNetwork', tiny)).body['Err']), /subnet "10\.0\.0\.1\/32" is not an IPv4 network from \/1 to \/30/);
  });

  it('checks the labels while it makes the link, and removes the link when the labels refuse the Join', async () => {
    const store = new StateStore(tempDir());
    await store.load();
    const host = new FakeHostNetwork();
    let linkWhileChecking = false;
    const driver = new Driver(store, host, testSettings({ authKey: KEY }), captureLogger().log, {
      checkJoin: async () => {
        await new Promise((r) => setTimeout(r, 20));
        linkWhileChecking = host.links.size === 1;
        return 'tslink: label tslink.serve.443="htps:80": "htps" is not a protocol';
      },
      joined: () => undefined,
      leaving: async () => undefined,
      deleted: async () => undefined,
      operInfo: () => undefined,
    });
    const app = buildServer(driver, captureLogger().log);
    const post = async (url: string, body: unknown) => app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) });
    await post('/NetworkDriver.CreateNetwork', createNetworkBody());
    await post('/NetworkDriver.CreateEndpoint', { NetworkID: NET_ID, EndpointID: EP_ID, Interface: { Address: '172.18.0.2/16' } });
    const r = await post('/NetworkDriver.Join', { NetworkID: NET_ID, EndpointID: EP_ID, SandboxKey: '/var/run/docker/netns/0123456789ab' });
    assert.equal(r.statusCode, 400);
    assert.equal((JSON.parse(r.body) as { Code: string }).Code, 'TSLINK_LABEL_INVALID');
    assert.ok(linkWhileChecking, 'the link was made while the labels were checked (Join costs the longer, not the sum)');
    assert.deepEqual([...host.links], [], 'no link is left for a refused container');
    assert.equal(store.endpoints.get(EP_ID)?.joinedAt, undefined, 'not joined');
  });

  it("forwards a joined container's own WireGuard port from the host, until its Leave", async () => {
    const { call, host } = await setup();
    await call('NetworkDriver.CreateNetwork', createNetworkBody());
    await call('NetworkDriver.CreateEndpoint', { NetworkID: NET_ID, EndpointID: EP_ID, Interface: { Address: '172.18.0.2/16' } });
    assert.deepEqual(host.forwardSyncs, [], 'nothing before Join: no namespace holds the address yet');
    assert.equal((await call('NetworkDriver.Join', { NetworkID: NET_ID, EndpointID: EP_ID, SandboxKey: '/var/run/docker/netns/0123456789ab' })).status, 200);
    assert.deepEqual(host.forwardSyncs, [], 'Join answered before the rewrite began (its fork of iptables-restore would hold the reply)');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(host.forwardSyncs.at(-1), [{ address: '172.18.0.2', port: 41642 }]);
    await call('NetworkDriver.Leave', { NetworkID: NET_ID, EndpointID: EP_ID });
    assert.deepEqual(host.forwardSyncs.at(-1), [], 'gone when Leave returns');
  });

  it('answers a host failure in Join with a 500 that says what failed', async () => {
    const { call, host } = await setup();
    await call('NetworkDriver.CreateNetwork', createNetworkBody());
    await call('NetworkDriver.CreateEndpoint', { NetworkID: NET_ID, EndpointID: EP_ID, Interface: { Address: '172.18.0.2/16' } });
    host.failSetUp = true;
    const r = await call('NetworkDriver.Join', { NetworkID: NET_ID, EndpointID: EP_ID, SandboxKey: '/var/run/docker/netns/0123456789ab' });
    assert.equal(r.status, 500);
    assert.match(String(r.body['Err']), /^tslink: could not create the container's network interface: .*Operation not permitted/);
  });

  it('rolls back what a failing host command leaves half done, and keeps what Docker will retry', async () => {
    const { call, host } = await setup();
    host.failRules = true;
    const r = await call('NetworkDriver.CreateNetwork', createNetworkBody());
    assert.equal(r.status, 500);
    assert.equal(r.body['Code'], 'TSLINK_HOST_FAILED');
    assert.match(String(r.body['Err']), /could not set up NAT and filter rules/);
    assert.equal((await call('NetworkDriver.CreateEndpoint', { NetworkID: NET_ID, EndpointID: EP_ID, Interface: { Address: '172.18.0.2/16' } })).status, 404, 'the network was not kept');
    host.failRules = false;
    assert.equal((await call('NetworkDriver.CreateNetwork', createNetworkBody())).status, 200);
    assert.equal((await call('NetworkDriver.CreateEndpoint', { NetworkID: NET_ID, EndpointID: EP_ID, Interface: { Address: '172.18.0.2/16' } })).status, 200);
    assert.equal((await call('NetworkDriver.Join', { NetworkID: NET_ID, EndpointID: EP_ID, SandboxKey: '/var/run/docker/netns/0123456789ab' })).status, 200);
    host.failTearDown = true;
    const d = await call('NetworkDriver.DeleteEndpoint', { NetworkID: NET_ID, EndpointID: EP_ID });
    assert.equal(d.status, 500);
    assert.equal((await call('NetworkDriver.EndpointOperInfo', { NetworkID: NET_ID, EndpointID: EP_ID })).status, 200, 'the endpoint is kept for Docker to delete again');
    host.failTearDown = false;
    assert.equal((await call('NetworkDriver.DeleteEndpoint', { NetworkID: NET_ID, EndpointID: EP_ID })).status, 200);
    assert.equal(host.links.size, 0);
  });

  it('never puts a network auth key into logs, errors or answers', async () => {
    const { call, lines } = await setup({});
    await call('NetworkDriver.CreateNetwork', createNetworkBody({ 'tslink.authkey': KEY, 'tslink.bogus': '1' }));
    await call('NetworkDriver.CreateNetwork', createNetworkBody({ 'tslink.authkey': KEY }));
    await call('NetworkDriver.CreateNetwork', createNetworkBody({ 'tslink.authkey': `${KEY} x` }));
    const all = lines.join('\n');
    assert.ok(lines.length > 0);
    assert.ok(!all.includes('SECRETSECRET'), all);
  });

  it('survives arbitrary JSON bodies on every call (property)', async () => {
    const { call } = await setup();
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...CALLS), fc.jsonValue(), async (path, body) => {
        const r = await call(path, undefined, JSON.stringify(body));
        assert.ok([200, 400, 404, 413].includes(r.status), `${path} -> ${r.status}`);
        if (r.status !== 200) assert.match(String(r.body['Err']), /^tslink: /);
      }),
      { numRuns: 300 },
    );
    assert.equal((await call('Plugin.Activate')).status, 200);
  });
});
