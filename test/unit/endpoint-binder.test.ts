import { EndpointSessions } from '../../src/state/endpoint-sessions.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { ContainerSummary, DockerApi, NetworkSnapshot } from '../../src/docker/api.js';
import { EndpointBinder } from '../../src/docker/binder.js';
import { ContainerCache } from '../../src/docker/container-cache.js';
import { stoppingContainer } from '../../src/docker/stop-signals.js';
import type { DockerEvent, DockerEventAction } from '../../src/docker/events.js';
import { NetnsReadiness } from '../../src/host/netns-readiness.js';
import { linkNames, type DockerId } from '../../src/host/host-spec.js';
import { StateStore, type EndpointRecord, type NetworkRecord } from '../../src/state/store.js';
import { captureLogger, tempDir } from './fakes.js';

const NET = 'f'.repeat(64);
const net: NetworkRecord = { id: NET, createdAt: '', subnet: '10.1.0.0/24', gateway: '10.1.0.1', mtu: 1500, config: { ephemeral: false, mtu: 1500 } as NetworkRecord['config'] };
const epId = (i: number): string => i.toString(16).padEnd(64, 'e');
const cid = (i: number): string => i.toString(16).padEnd(64, 'c');
const sandboxId = (i: number): string => i.toString(16).padStart(12, "0");
const sandbox = (i: number): string => `/var/run/docker/netns/${sandboxId(i)}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A Docker whose listing and network snapshot the test changes step by step. */
function fakeDocker(init: { list?: ContainerSummary[]; snap?: Record<string, string>; listDelayMs?: number; hang?: boolean } = {}) {
  const state = { list: init.list ?? [], snap: init.snap ?? {}, listDelayMs: init.listDelayMs ?? 0, lists: 0, inspects: 0, aborted: 0 };
  const api: DockerApi = {
    openEvents: async () => {
      throw new Error('unused');
    },
    async listContainers(o) {
      state.lists++;
      // A listing that never answers unless its caller gives up on it.
      if (init.hang) await new Promise((_, reject) => o.signal?.addEventListener('abort', () => (state.aborted++, reject(new Error('aborted')))));
      if (state.listDelayMs) await sleep(state.listDelayMs);
      return state.list.filter((c) => !o.createdOnly || c.state === 'created');
    },
    async imageLabels(image): Promise<Record<string, string>> {
      return image === 'evil:latest' ? { 'tslink.hostname': 'prod-db', 'org.example': 'x' } : {};
    },
    async inspectNetwork(id): Promise<NetworkSnapshot> {
      state.inspects++;
      return { id, name: 'tsnet', containers: { ...state.snap } };
    },
  };
  return { api, state };
}

const container = (id: string, labels: Record<string, string>, state = 'created', endpointId = ''): ContainerSummary => ({
  id, name: `name-${id.slice(0, 4)}`, state, labels, image: labels['test.image'] ?? 'plain:latest', imageName: labels['test.image'] ?? 'plain:latest', createdMs: Date.now(), networks: [{ name: 'tsnet', networkId: NET, endpointId }],
});

async function setup(docker: DockerApi, opts: { mounted?: Set<string>; pollMs?: number } = {}) {
  const store = new StateStore(tempDir());
  await store.load();
  await store.putNetwork(net);
  const { log, lines } = captureLogger();
  const mounted = opts.mounted ?? new Set([1, 2, 3, 4].map((i) => `/run/docker/netns/${sandboxId(i)}`));
  const readiness = new NetnsReadiness({ pollMs: 5, giveUpMs: 2000, mountPoints: async () => mounted, onError: (e) => assert.fail(e) });
  const ready: EndpointRecord[] = [];
  const recovered: boolean[] = [];
  const bound: EndpointRecord[] = [];
  const reconfigured: EndpointRecord[] = [];
  const sessions = new EndpointSessions();
  const binder = new EndpointBinder(store, sessions, docker, new ContainerCache(() => docker.listContainers({})), readiness, log,
    { joinCheckMs: 200, snapshotPollMs: opts.pollMs ?? 5, unboundGiveUpMs: 5000 },
    {
      bound: (ep) => bound.push(ep),
      reconfigured: async (ep) => void reconfigured.push(ep),
      ready: (ep, _net, session) => {
        ready.push(ep);
        recovered.push(session.recovered);
      },
    });
  const addEp = async (i: number, sandboxKey?: string): Promise<EndpointRecord> => {
    const rec: EndpointRecord = { id: epId(i), networkId: NET, address: `10.1.0.${i}`, prefixLen: 24, ...linkNames(epId(i) as DockerId, new Set()), createdAt: new Date().toISOString(), sandboxKey };
    await store.putEndpoint(rec);
    return rec;
  };
  /** Docker's Join as the driver runs it: the check, then the record gets its sandbox, then `joined`. */
  const join = async (i: number): Promise<void> => {
    const ep = store.endpoints.get(epId(i)) ?? (await addEp(i));
    await binder.checkAtJoin(ep, net);
    sessions.join(ep.id);
    binder.joined((await store.patchEndpoint(ep.id, { sandboxKey: sandbox(i), joinedAt: new Date().toISOString() }))!);
  };
  /** Docker's Leave as the app runs it: the session ends, the binder forgets. */
  const leave = (i: number): void => {
    sessions.leave(epId(i));
    binder.forget(epId(i));
  };
  return { store, sessions, binder, addEp, join, leave, ready, recovered, bound, reconfigured, lines };
}

async function until(what: string, f: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

const createEvent = (c: ContainerSummary): DockerEvent =>
  ({ Type: 'container', Action: 'create', Actor: { ID: c.id, Attributes: { ...c.labels, name: c.name, image: 'img' } } });
const connectEvent = (containerId: string): DockerEvent =>
  ({ Type: 'network', Action: 'connect', Actor: { ID: NET, Attributes: { container: containerId, name: 'tsnet', type: 'tslink' } } });

describe('endpoint binder', () => {
  it('never binds a network snapshot placeholder (ep-<id>) and binds the real key to its own labels', async () => {
    const c1 = container(cid(1), { 'tslink.hostname': 'web' });
    const d = fakeDocker({ list: [c1], snap: { [`ep-${epId(1).slice(0, 12)}`]: epId(1) } });
    const t = await setup(d.api);
    await t.join(1);
    await sleep(30);
    assert.equal(t.store.endpoints.get(epId(1))!.containerId, undefined, 'a placeholder is not a container');
    assert.equal(t.ready.length, 0);
    d.state.snap = { [c1.id]: epId(1) };
    await until('ready', () => t.ready.length === 1);
    const rec = t.store.endpoints.get(epId(1))!;
    assert.equal(rec.containerId, c1.id);
    assert.equal(rec.boundVia, 'snapshot');
    assert.equal(t.ready[0]!.config?.hostname, 'web');
    t.binder.stop();
  });

  it('refuses a Join whose only candidate container has invalid labels, and binds nothing', async () => {
    const d = fakeDocker({ list: [container(cid(1), { 'tslink.serve.443': 'htps:80' })] });
    const t = await setup(d.api);
    const ep = await t.addEp(1);
    assert.match((await t.binder.checkAtJoin(ep, net)) ?? '', /tslink\.serve\.443.*htps/);
    assert.equal(t.store.endpoints.get(ep.id)!.containerId, undefined, 'the Join check never binds');
    t.binder.stop();
  });

  it('does not fail a connect for the labels of a container made long ago and never started (issue 22)', async () => {
    const bystander = { ...container(cid(1), { 'tslink.serve.443': 'htps:80' }), createdMs: Date.now() - 10 * 60_000 };
    const d = fakeDocker({ list: [bystander] });
    const t = await setup(d.api);
    assert.equal(await t.binder.checkAtJoin(await t.addEp(1), net), undefined, 'the running container\'s connect goes ahead');
    d.state.list = [{ ...bystander, createdMs: Date.now() - 2000 }];
    assert.match((await t.binder.checkAtJoin(await t.addEp(2), net)) ?? '', /htps/, 'a docker run, seconds after its create, is still told');
    t.binder.stop();
  });

  it('refuses labels the image set, naming them and the network option that allows them (issue 22)', async () => {
    const image = { 'tslink.hostname': 'prod-db', 'test.image': 'evil:latest' };
    const d = fakeDocker({ list: [container(cid(1), image)] });
    const t = await setup(d.api);
    const ep = await t.addEp(1);
    const why = (await t.binder.checkAtJoin(ep, net)) ?? '';
    assert.match(why, /the image "?evil:latest"? sets "?tslink\.hostname"?: an image's labels do not configure a node/);
    assert.match(why, /--opt tslink\.image-labels=true/);
    // The container's own value (another one than the image's) configures the node.
    d.state.list = [container(cid(2), { ...image, 'tslink.hostname': 'mine' })];
    assert.equal(await t.binder.checkAtJoin(await t.addEp(2), net), undefined);
    // A network that takes image labels.
    await t.store.putNetwork({ ...net, config: { ...net.config, imageLabels: true } });
    d.state.list = [container(cid(3), image)];
    assert.equal(await t.binder.checkAtJoin(await t.addEp(3), { ...net, config: { ...net.config, imageLabels: true } }), undefined);
    t.binder.stop();
  });

  it('does not bind at Join even with a single candidate: a connect of a running container looks the same', async () => {
    const stale = container(cid(9), { 'tslink.hostname': 'stale' });
    const running = container(cid(2), { 'tslink.hostname': 'connected' }, 'running');
    const d = fakeDocker({ list: [stale, running], snap: {} });
    const t = await setup(d.api);
    await t.join(2);
    assert.equal(t.store.endpoints.get(epId(2))!.containerId, undefined);
    d.state.snap = { [running.id]: epId(2) };
    await t.binder.onEvent(connectEvent(running.id));
    await until('ready', () => t.ready.length === 1);
    assert.equal(t.ready[0]!.config?.hostname, 'connected');
    assert.equal(t.ready[0]!.boundVia, 'event');
    t.binder.stop();
  });

  it('gives up the Join check after its time bound without failing the Join', async () => {
    const d = fakeDocker({ list: [container(cid(1), { 'tslink.serve.443': 'bad' })], hang: true });
    const t = await setup(d.api);
    const ep = await t.addEp(1);
    await t.binder.checkAtJoin(ep, net); // resolves although the listing never would
    assert.equal(d.state.aborted, 1, 'the listing was aborted at the bound');
    t.binder.stop();
  });

  it('waits for labels it does not know instead of starting from guessed ones', async () => {
    const c1 = container(cid(1), { 'tslink.hostname': 'late-labels' });
    const d = fakeDocker({ list: [], snap: { [c1.id]: epId(1) } });
    const t = await setup(d.api, { pollMs: 1000 });
    await t.join(1);
    // The snapshot names the container, whose labels nobody has told yet.
    await until('a snapshot read', () => d.state.inspects > 0);
    await sleep(20);
    assert.equal(t.ready.length, 0, 'no node from an empty label set');
    assert.equal(t.store.endpoints.get(epId(1))!.config, undefined);
    await t.binder.onEvent(createEvent(c1));
    await until('ready', () => t.ready.length === 1);
    assert.equal(t.ready[0]!.config?.hostname, 'late-labels');
    t.binder.stop();
  });

  it('keeps the first container Docker named, whatever a second, different answer says', async () => {
    const c1 = container(cid(1), { 'tslink.hostname': 'one' }, 'running', epId(1));
    const c2 = container(cid(2), { 'tslink.hostname': 'two' }, 'running');
    const d = fakeDocker({ list: [c1, c2] });
    const t = await setup(d.api);
    await t.addEp(1, sandbox(1));
    await t.binder.prime();
    await t.binder.bind(epId(1), c2.id, 'event');
    assert.equal(t.store.endpoints.get(epId(1))!.containerId, c1.id);
    assert.equal(t.store.endpoints.get(epId(1))!.config?.hostname, 'one', 'the first container\'s labels');
    assert.equal(t.bound.length, 1, 'bound once');
    t.binder.stop();
  });

  it('calls a node recovered only when its endpoint was joined before this process started', async () => {
    const c1 = container(cid(1), { 'tslink.hostname': 'old' }, 'running', epId(1));
    const c2 = container(cid(2), { 'tslink.hostname': 'new' }, 'running', epId(2));
    const d = fakeDocker({ list: [c1, c2] });
    const t = await setup(d.api);
    // Both bound; 1 was joined before the binder started (a plugin restart), 2 just now, and a
    // repair listing meets 2 before its Join's `joined` callback ran.
    for (const [i, c] of [[1, c1], [2, c2]] as const) {
      await t.addEp(i);
      await t.binder.bind(epId(i), c.id, 'event');
    }
    await t.store.patchEndpoint(epId(1), { sandboxKey: sandbox(1), joinedAt: new Date(Date.now() - 60_000).toISOString() });
    await t.store.patchEndpoint(epId(2), { sandboxKey: sandbox(2), joinedAt: new Date(Date.now() + 1000).toISOString() });
    await t.binder.prime();
    // Its Join's callback: from here on 2 is joined (in a session of its own, not a recovered one).
    t.sessions.join(epId(2));
    t.binder.joined(t.store.endpoints.get(epId(2))!);
    await until('both ready', () => t.ready.length === 2);
    const flags = Object.fromEntries(t.ready.map((ep, i) => [ep.config!.hostname, t.recovered[i]]));
    assert.deepEqual(flags, { old: true, new: false }, 'a new container on a known identity must run `up`: it is not a recovery');
    t.binder.stop();
  });

  it('restarts a node whose container a repair listing shows with other labels', async () => {
    const c1 = container(cid(1), { 'tslink.hostname': 'before' }, 'running', epId(1));
    const d = fakeDocker({ list: [c1] });
    const t = await setup(d.api);
    await t.addEp(1, sandbox(1));
    await t.store.patchEndpoint(epId(1), { joinedAt: new Date(Date.now() - 60_000).toISOString() }); // joined before a restart
    await t.binder.prime();
    await until('first ready', () => t.ready.length === 1);
    d.state.list = [{ ...c1, labels: { 'tslink.hostname': 'after' } }];
    // The cache holds a container's labels for its life; a repair re-reads them from the listing.
    await t.binder.prime();
    await until('second ready', () => t.ready.length === 2);
    assert.equal(t.reconfigured.length, 1);
    assert.equal(t.ready[1]!.config?.hostname, 'after');
    t.binder.stop();
  });

  it('shares one listing between the lookups of a burst', async () => {
    const list = [1, 2, 3, 4].map((i) => container(cid(i), { 'tslink.hostname': `h${i}` }, 'created'));
    const d = fakeDocker({ list, listDelayMs: 20 });
    const cache = new ContainerCache(() => d.api.listContainers({}));
    const found = await Promise.all(list.map((c) => cache.lookup(c.id)));
    assert.deepEqual(found.map((k) => k?.labels['tslink.hostname']), ['h1', 'h2', 'h3', 'h4']);
    assert.equal(d.state.lists, 1);
  });

  it('restores bindings from a listing (plugin restart) and reports old orphans', async () => {
    const d = fakeDocker({ list: [container(cid(1), { 'tslink.hostname': 'api' }, 'running', epId(1))] });
    const t = await setup(d.api);
    await t.addEp(1);
    await t.addEp(2);
    await t.addEp(3);
    t.store.endpoints.get(epId(2))!.createdAt = new Date(Date.now() - 120_000).toISOString();
    assert.deepEqual(await t.binder.prime(60_000), [epId(2)], 'listed and fresh endpoints are kept');
    assert.equal(t.store.endpoints.get(epId(1))!.containerId, cid(1));
    assert.equal(t.store.endpoints.get(epId(1))!.boundVia, 'listing');
    t.binder.stop();
  });

  it('never makes a leaving endpoint ready again, whatever a repair listing says, until Docker joins it anew', async () => {
    const c1 = container(cid(1), { 'tslink.hostname': 'api' }, 'running', epId(1));
    const d = fakeDocker({ list: [c1], snap: { [c1.id]: epId(1) } });
    const t = await setup(d.api);
    await t.join(1);
    await until('ready', () => t.ready.length === 1);
    // Leave has begun (the record still has its sandbox until Leave returns) when a repair runs.
    t.leave(1);
    await t.binder.prime();
    await t.binder.onEvent({ Type: 'container', Action: 'start', Actor: { ID: c1.id, Attributes: {} } });
    await sleep(40);
    assert.equal(t.ready.length, 1, 'no second ready for a leaving endpoint');
    await t.join(1);
    await until('ready after a new Join', () => t.ready.length === 2);
    t.binder.stop();
  });

  // Every order in which Docker's answers can reach the binder for one container, with a
  // second created container on the network as a distractor: the create event (labels), the
  // Join, the moment the snapshot names the real container, the connect event, a listing.
  // Docker's own order constrains only Join < snapshot names it < connect event.
  const STEPS = ['create', 'join', 'named', 'connect', 'listing'] as const;
  type Step = (typeof STEPS)[number];
  const orders: Step[][] = [];
  const permute = (rest: Step[], acc: Step[]): void => {
    if (!rest.length) {
      if (acc.indexOf('join') < acc.indexOf('named') && acc.indexOf('named') < acc.indexOf('connect')) orders.push(acc);
      return;
    }
    rest.forEach((s, i) => permute([...rest.slice(0, i), ...rest.slice(i + 1)], [...acc, s]));
  };
  permute([...STEPS], []);

  /** Plays interleaved step sequences for several containers against one binder. */
  async function play(seqs: Step[][], schedule: number[]): Promise<void> {
    const n = seqs.length;
    const cs = seqs.map((_, i) => container(cid(i + 1), { 'tslink.hostname': `burst-${i + 1}` }));
    const distractor = container(cid(99), { 'tslink.hostname': 'distractor' });
    const d = fakeDocker({ list: [distractor], snap: {} });
    const t = await setup(d.api);
    const listed = new Set<number>();
    const named = new Set<number>();
    const view = (): void => {
      d.state.list = [distractor, ...cs.flatMap((c, i) => (listed.has(i) ? [{ ...c, networks: [{ ...c.networks[0]!, endpointId: named.has(i) ? epId(i + 1) : '' }] }] : []))];
      d.state.snap = Object.fromEntries(cs.map((c, i) => (named.has(i) ? [c.id, epId(i + 1)] : [`ep-${epId(i + 1).slice(0, 12)}`, epId(i + 1)])));
    };
    // A container exists (and is listed) from before its endpoint: Docker creates it first.
    for (let i = 0; i < n; i++) listed.add(i);
    view();
    const pos = seqs.map(() => 0);
    const run = async (i: number, s: Step): Promise<void> => {
      if (s === 'create') await t.binder.onEvent(createEvent(cs[i]!));
      else if (s === 'join') await t.join(i + 1);
      else if (s === 'named') (named.add(i), view());
      else if (s === 'connect') await t.binder.onEvent(connectEvent(cs[i]!.id));
      else await t.binder.prime(60_000);
    };
    for (const pick of [...schedule, ...seqs.flatMap((s, i) => s.map(() => i))]) {
      const i = pick % n;
      if (pos[i]! < seqs[i]!.length) await run(i, seqs[i]![pos[i]!++]!);
      await sleep(1);
    }
    await until(`all ${n} ready`, () => t.ready.length >= n);
    await sleep(20);
    assert.equal(t.ready.length, n, 'each endpoint ready exactly once');
    for (let i = 0; i < n; i++) {
      const rec = t.store.endpoints.get(epId(i + 1))!;
      assert.equal(rec.containerId, cs[i]!.id, `endpoint ${i + 1} bound to its own container`);
      assert.equal(rec.config?.hostname, `burst-${i + 1}`);
      assert.equal(t.ready.find((r) => r.id === rec.id)?.config?.hostname, `burst-${i + 1}`, 'the node starts with its own labels');
      assert.equal(t.bound.filter((b) => b.id === rec.id).length, 1, 'bound exactly once');
    }
    t.binder.stop();
  }

  it(`binds right in every order of Docker's answers (${orders.length} orders)`, async () => {
    for (const order of orders) await play([order], []);
  });

  it('binds a burst right under any interleaving of several containers (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom(...orders), { minLength: 2, maxLength: 4 }),
        fc.array(fc.nat(7), { maxLength: 30 }),
        (seqs, schedule) => play(seqs, schedule),
      ),
      { numRuns: 25 },
    );
  });
});

describe('stopping signals', () => {
  const ev = (Action: DockerEventAction, signal?: string): DockerEvent => ({ Type: 'container', Action, Actor: { ID: cid(1), Attributes: signal ? { signal } : ({} as Record<string, string>) } });
  it('drains on stopping kills and on die, never on a reload signal', () => {
    assert.equal(stoppingContainer(ev('kill', '1')), undefined, 'HUP is a reload');
    assert.equal(stoppingContainer(ev('kill', '15')), cid(1));
    assert.equal(stoppingContainer(ev('kill', 'SIGKILL')), cid(1));
    assert.equal(stoppingContainer(ev('die')), cid(1));
    assert.equal(stoppingContainer(ev('start')), undefined);
  });
});
