import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Driver } from '../../src/driver/driver.js';
import { NO_LIFECYCLE } from '../../src/driver/lifecycle.js';
import { NodeManager } from '../../src/node/manager.js';
import { StatusFiles, hasNode, parseNodeStatus, type NodeStatus } from '../../src/node/status.js';
import { endpointView } from '../../src/ops/endpoint-view.js';
import { Metrics } from '../../src/ops/metrics.js';
import { buildOpsServer } from '../../src/ops/server.js';
import { readStatus } from '../../src/ops/status-cli.js';
import { StateStore } from '../../src/state/store.js';
import type { WatcherState } from '../../src/docker/events.js';
import { EP_ID, FakeHostNetwork, KEY, NET_ID, captureLogger, createNetworkBody, tempDir, testSettings } from './fakes.js';

const watcher = (): WatcherState => ({ connected: true, lastEventAgeMs: 0, processed: 0, dropped: 0, reconnects: 0, queued: 0 });
/** JSON as it goes on the wire: absent and undefined fields alike. */
const wire = (x: unknown): unknown => JSON.parse(JSON.stringify(x));

const crashLoops = async (m: Metrics): Promise<number> => {
  const text = await m.registry.getSingleMetricAsString('tslink_tailscaled_crash_loops_total');
  return Number(/^tslink_tailscaled_crash_loops_total (\d+)$/m.exec(text)?.[1]);
};

const status = (over: Partial<NodeStatus>): NodeStatus => ({
  endpoint: EP_ID, network: NET_ID, state: 'starting', since: new Date().toISOString(), tailscaleIPs: [], restarts: 2, crashLoop: false, ...over,
});

describe('node status', () => {
  it('metrics count a crash loop from the supervisor\'s field, whatever the error text says', async () => {
    const m = new Metrics();
    const starting = status({});
    // The old words without the field: no crash loop.
    m.nodeStatus(starting, status({ state: 'failed', restarts: 3, lastError: 'tailscaled crashed 5 times within 30 s (last exit code 1): x; next try after a cooldown' }));
    assert.equal(await crashLoops(m), 0, 'error text alone is not a crash loop');
    // Other words with the field: one crash loop, counted once however often it is reported.
    const loop = status({ state: 'failed', restarts: 4, crashLoop: true, lastError: 'tailscaled kept exiting (5 exits in 30 s); cooling down' });
    m.nodeStatus(starting, loop);
    m.nodeStatus(loop, { ...loop });
    assert.equal(await crashLoops(m), 1);
    // The next try starts afresh; a later loop counts again.
    const again = status({ state: 'starting', restarts: 4 });
    m.nodeStatus(loop, again);
    m.nodeStatus(again, { ...loop, restarts: 9 });
    assert.equal(await crashLoops(m), 2);
  });

  it('EndpointOperInfo, /v1/endpoints, the status file and tslink status carry the same status', async () => {
    const dataDir = tempDir();
    const store = new StateStore(dataDir);
    await store.load();
    const { log } = captureLogger();
    const settings = testSettings({ dataDir, authKey: KEY });
    const nodes = new NodeManager(store, settings, async () => ({ code: 1, stdout: '', stderr: 'no commands in unit tests' }), new Error('no tailscale in unit tests'), log);
    const driver = new Driver(store, new FakeHostNetwork(), settings, log, { ...NO_LIFECYCLE, operInfo: (ep) => nodes.operInfo(ep) });
    await driver.createNetwork(createNetworkBody());
    await driver.createEndpoint({ NetworkID: NET_ID, EndpointID: EP_ID, Interface: { Address: '172.18.0.2/16' } });
    const req = { NetworkID: NET_ID, EndpointID: EP_ID };

    // No node yet: the report says why, typed as well.
    assert.deepEqual(nodes.operInfo(store.endpoints.get(EP_ID)!), { state: 'waiting-for-container' });
    const configError = 'tslink: label tslink.serve.443="htps:80": "htps" is not a protocol';
    const ep = (await store.patchEndpoint(EP_ID, { containerId: 'c'.repeat(64), containerName: 'web', configError }))!;
    assert.deepEqual(nodes.operInfo(ep), { state: 'failed', lastError: configError });
    assert.equal(driver.operInfo(req).Value['state'], 'failed');

    // One status, recorded by the manager.
    nodes.invalid(ep);
    const report = nodes.operInfo(ep);
    assert.ok(hasNode(report), 'the endpoint has a node status now');
    assert.equal(report.state, 'failed');
    assert.equal(report.crashLoop, false);
    assert.equal(report.lastError, configError);

    // EndpointOperInfo: the driver's fields plus the status, field for field.
    const value = wire(driver.operInfo(req).Value) as Record<string, unknown>;
    for (const [k, v] of Object.entries(wire(report) as Record<string, unknown>)) assert.deepEqual(value[k], v, `EndpointOperInfo ${k}`);
    assert.equal(value['address'], '172.18.0.2/16');

    // The status file, read back as a NodeStatus.
    const file = join(dataDir, 'status', `${EP_ID}.json`);
    for (let i = 0; i < 200 && !existsSync(file); i++) await new Promise((r) => setTimeout(r, 5));
    const fromFile = parseNodeStatus(JSON.parse(readFileSync(file, 'utf8')));
    assert.deepEqual(wire(fromFile), wire(report));

    // /v1/endpoints: the view is the status without the daemon's version.
    const view = endpointView(ep, report);
    const { tailscaledVersion: _, ...withoutVersion } = report;
    assert.deepEqual(wire(view), wire(withoutVersion));
    const ops = buildOpsServer({ metrics: new Metrics(), endpoints: () => [endpointView(ep, nodes.operInfo(ep))], watcher, recovered: () => true });
    const r = await ops.inject({ method: 'GET', url: '/v1/endpoints' });
    assert.deepEqual(JSON.parse(r.body), { endpoints: [wire(view)] });
    await ops.close();

    // tslink status, from the status files (no plugin socket here).
    const st = await readStatus(dataDir);
    assert.equal(st.source, 'status files');
    assert.deepEqual(wire(st.endpoints), [wire(report)]);
  });

  it('a crash loop survives the status file and the view', async () => {
    const dataDir = tempDir();
    const loop = status({ state: 'failed', restarts: 5, crashLoop: true, lastError: 'tailscaled crashed 5 times', nextAttemptAt: new Date().toISOString(), tailscaledVersion: '1.90.0' });
    await new StatusFiles(dataDir).write(loop);
    const st = await readStatus(dataDir);
    assert.deepEqual(wire(st.endpoints), [wire(loop)]);
    const view = endpointView({ id: EP_ID, networkId: NET_ID, address: '172.18.0.2', prefixLen: 16, hostIf: 'h', containerIf: 'c', createdAt: '' }, loop);
    assert.equal(view.crashLoop, true);
    assert.equal(view.state, 'failed');
    // A file of an older tslink has no crashLoop field: it reads as none.
    const { crashLoop: _, ...old } = loop;
    assert.equal(parseNodeStatus(wire(old)).crashLoop, false);
    assert.throws(() => parseNodeStatus({ ...old, state: 'dancing' }), /no known state/);
  });
});
