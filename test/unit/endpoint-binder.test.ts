import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ContainerSummary, DockerApi, NetworkSnapshot } from '../../src/docker/api.js';
import { EndpointBinder } from '../../src/docker/binder.js';
import { linkNames } from '../../src/host/network.js';
import { StateStore, type EndpointRecord, type NetworkRecord } from '../../src/state/store.js';
import { captureLogger, tempDir } from './fakes.js';

const NET = 'n'.repeat(64);
const net: NetworkRecord = { id: NET, createdAt: '', subnet: '10.1.0.0/24', gateway: '10.1.0.1', mtu: 1500, config: { ephemeral: false, mtu: 1500 } as NetworkRecord['config'] };
const epId = (i: number): string => i.toString(16).padStart(64, 'e');

function fakeDocker(over: Partial<{ list: ContainerSummary[]; snap: NetworkSnapshot; listDelayMs: number }> = {}) {
  const calls: string[] = [];
  const api: DockerApi & { calls: string[]; state: typeof over } = {
    calls,
    state: over,
    openEvents: async () => {
      throw new Error('unused');
    },
    async listContainers(o) {
      calls.push(`list${o.createdOnly ? ':created' : ''}`);
      if (over.listDelayMs) await new Promise((r) => setTimeout(r, over.listDelayMs));
      return (over.list ?? []).filter((c) => !o.createdOnly || c.state === 'created');
    },
    async inspectNetwork(id) {
      calls.push(`inspect:${id.slice(0, 4)}`);
      return over.snap ?? { id, name: 'tsnet', containers: {} };
    },
  };
  return api;
}

const container = (id: string, labels: Record<string, string>, state = 'created', endpointId = ''): ContainerSummary => ({
  id, name: `name-${id}`, state, labels, networks: [{ name: 'tsnet', networkId: NET, endpointId }],
});

async function setup(docker: DockerApi, mounted = new Set<string>()) {
  const store = new StateStore(tempDir());
  await store.load();
  await store.putNetwork(net);
  const binder = new EndpointBinder(store, docker, captureLogger().log, {
    joinInferenceMs: 200, netnsPollMs: 5, netnsGiveUpMs: 2000, mountPoints: async () => mounted,
  });
  const addEp = async (i: number, sandbox?: string): Promise<EndpointRecord> => {
    const rec: EndpointRecord = { id: epId(i), networkId: NET, address: `10.1.0.${i}`, prefixLen: 24, ...linkNames(epId(i)), createdAt: '', sandboxKey: sandbox };
    await store.putEndpoint(rec);
    return rec;
  };
  return { store, binder, addEp };
}

describe('endpoint binder', () => {
  it('binds at Join when exactly one created container waits on the network', async () => {
    const docker = fakeDocker({ list: [container('c1', { 'tslink.hostname': 'web' }), container('c2', {}, 'running', epId(9))] });
    const { binder, addEp, store } = await setup(docker);
    const ep = await addEp(2);
    await binder.inferAtJoin(ep, net);
    const rec = store.endpoints.get(ep.id)!;
    assert.equal(rec.containerId, 'c1');
    assert.equal(rec.boundVia, 'join');
    assert.equal(rec.config?.hostname, 'web');
    assert.ok(!docker.calls.some((c) => c.startsWith('inspect:c')), 'never inspects the container');
  });

  it('fails Join with the grammar error when the inferred container has bad labels', async () => {
    const docker = fakeDocker({ list: [container('c1', { 'tslink.serve.443': 'htps:80' })] });
    const { binder, addEp, store } = await setup(docker);
    const ep = await addEp(2);
    await assert.rejects(binder.inferAtJoin(ep, net), (e: Error) => /^tslink: .*tslink\.serve\.443.*htps/.test(e.message));
    assert.match(store.endpoints.get(ep.id)!.configError ?? '', /htps/);
  });

  it('leaves an ambiguous Join to the connect event, which binds from the network snapshot', async () => {
    const docker = fakeDocker({ list: [container('c1', { 'tslink.hostname': 'a' }), container('c2', { 'tslink.hostname': 'b' })] });
    const { binder, addEp, store } = await setup(docker);
    const e1 = await addEp(1);
    const e2 = await addEp(2);
    await binder.inferAtJoin(e1, net);
    assert.equal(store.endpoints.get(e1.id)!.containerId, undefined);
    for (const c of docker.state.list!) {
      await binder.onEvent({ Type: 'container', Action: 'create', Actor: { ID: c.id, Attributes: { ...c.labels, name: c.name, image: 'x' } } });
    }
    docker.state.snap = { id: NET, name: 'tsnet', containers: { c1: e1.id, c2: e2.id } };
    await binder.onEvent({ Type: 'network', Action: 'connect', Actor: { ID: NET, Attributes: { container: 'c2', name: 'tsnet', type: 'tslink' } } });
    assert.equal(store.endpoints.get(e1.id)!.config?.hostname, 'a');
    assert.equal(store.endpoints.get(e2.id)!.config?.hostname, 'b');
    assert.equal(store.endpoints.get(e2.id)!.boundVia, 'event');
  });

  it('gives up on inference after its time bound', async () => {
    const docker = fakeDocker({ list: [container('c1', {})], listDelayMs: 1000 });
    const { binder, addEp, store } = await setup(docker);
    const ep = await addEp(1);
    const t0 = Date.now();
    await binder.inferAtJoin(ep, net);
    assert.ok(Date.now() - t0 < 400, `took ${Date.now() - t0} ms`);
    assert.equal(store.endpoints.get(ep.id)!.containerId, undefined);
  });

  it('excludes containers already bound to another endpoint of the network', async () => {
    const docker = fakeDocker({ list: [container('c1', {}), container('c2', {})] });
    const { binder, addEp, store } = await setup(docker);
    const e1 = await addEp(1);
    await binder.bind(e1.id, 'c1', 'event');
    const e2 = await addEp(2);
    await binder.inferAtJoin(e2, net);
    assert.equal(store.endpoints.get(e2.id)!.containerId, 'c2');
  });

  it('is ready once bound and the namespace is mounted, once', async () => {
    const mounted = new Set<string>();
    const docker = fakeDocker({ list: [container('c1', { 'tslink.hostname': 'web' })] });
    const { binder, addEp } = await setup(docker, mounted);
    const ready: string[] = [];
    binder.on('ready', (ep: EndpointRecord) => ready.push(ep.id));
    const ep = await addEp(1, '/var/run/docker/netns/abc123');
    await binder.inferAtJoin(ep, net);
    binder.joined(ep);
    await new Promise((r) => setTimeout(r, 30));
    assert.deepEqual(ready, []);
    mounted.add('/run/docker/netns/abc123');
    await new Promise((r) => setTimeout(r, 30));
    assert.deepEqual(ready, [ep.id]);
    binder.joined(ep);
    await new Promise((r) => setTimeout(r, 30));
    assert.deepEqual(ready, [ep.id], 'no second ready');
    binder.stop();
  });

  it('restores bindings and labels from a listing (plugin restart)', async () => {
    const docker = fakeDocker({ list: [container('c1', { 'tslink.hostname': 'api' }, 'running', epId(1))] });
    const { binder, addEp, store } = await setup(docker);
    await addEp(1);
    await binder.prime();
    assert.equal(store.endpoints.get(epId(1))!.containerId, 'c1');
    assert.equal(store.endpoints.get(epId(1))!.boundVia, 'listing');
    assert.equal(binder.containers.get('c1')?.labels['tslink.hostname'], 'api');
    binder.stop();
  });

  it('reports endpoints no container lists any more, once they are old enough', async () => {
    const docker = fakeDocker({ list: [container('c1', {}, 'running', epId(1))] });
    const { binder, addEp, store } = await setup(docker);
    await addEp(1);
    await addEp(2);
    await addEp(3);
    store.endpoints.get(epId(2))!.createdAt = new Date(Date.now() - 120_000).toISOString();
    store.endpoints.get(epId(3))!.createdAt = new Date().toISOString();
    store.endpoints.get(epId(1))!.createdAt = new Date(Date.now() - 120_000).toISOString();
    assert.deepEqual(await binder.prime(60_000), [epId(2)], 'listed and fresh endpoints are kept');
    binder.stop();
  });

  it('forgets destroyed containers and announces kills', async () => {
    const { binder } = await setup(fakeDocker());
    const stopping: string[] = [];
    binder.on('stopping', (id: string) => stopping.push(id));
    await binder.onEvent({ Type: 'container', Action: 'create', Actor: { ID: 'c9', Attributes: { name: 'x', image: 'i', 'tslink.hostname': 'x' } } });
    assert.deepEqual(binder.containers.get('c9'), { name: 'x', labels: { 'tslink.hostname': 'x' } });
    await binder.onEvent({ Type: 'container', Action: 'kill', Actor: { ID: 'c9', Attributes: { signal: '1' } } });
    assert.deepEqual(stopping, [], 'a HUP (reload) does not drain');
    await binder.onEvent({ Type: 'container', Action: 'kill', Actor: { ID: 'c9', Attributes: { signal: '15' } } });
    await binder.onEvent({ Type: 'container', Action: 'destroy', Actor: { ID: 'c9', Attributes: {} } });
    assert.equal(binder.containers.has('c9'), false);
    assert.deepEqual(stopping, ['c9']);
  });
});
