import type { DockerApi } from './api.js';
import { isContainerId, type ContainerCache, type KnownContainer } from './container-cache.js';
import type { DockerEvent } from './events.js';
import { ContainerLabels, type ParsedLabels } from './container-labels.js';
import { NetworkNames } from './network-names.js';
import { JoinCheck } from './join-check.js';
import type { BindVia, BinderCallbacks, BinderOptions } from './binder-contract.js';
import { localSandboxPath } from '../host/netns.js';
import type { NetnsReadiness } from '../host/netns-readiness.js';
import type { EndpointRecord, NetworkRecord, StateStore } from '../state/store.js';
import type { EndpointSessions } from '../state/endpoint-sessions.js';
import type { Logger } from '../util/log.js';
import { KeyedMutex } from '../util/keyed-mutex.js';
import { Poller } from '../util/poller.js';
import { shortId } from '../util/short-id.js';

/** An endpoint joined this long before the plugin started is surely listed by now if its container lives. */
const JOINED_BEFORE_START_MS = 5_000;


/**
 * Ties each endpoint to its container, and so to the container's labels, without ever asking
 * Docker about the container being started (its lock is held while Docker waits on us).
 *
 * Only Docker names an endpoint's container: the `EndpointID` in a container listing, a real
 * 64-hex key in a network snapshot, or the `network connect` event. Snapshots taken during a
 * Join list the endpoint under a placeholder `ep-<endpointID>`, which is never a container.
 * Once named, an endpoint's container never changes; a different answer is logged as a bug.
 * A node starts only from labels Docker gave for that very container (a `create` event or a
 * listing): while they are unknown the endpoint waits, it is never configured by guesswork.
 */
export class EndpointBinder {
  /** Endpoint → when it started waiting for Docker to name its container. */
  private readonly unbound = new Map<string, number>();
  /** Container → endpoints named for it whose labels are not known yet. */
  private readonly awaitingLabels = new Map<string, Map<string, BindVia>>();
  private readonly emitted = new Set<string>();
  private readonly snapshots: Poller;
  private readonly names: NetworkNames;
  private readonly joinCheck: JoinCheck;
  private readonly labels: ContainerLabels;
  private readonly locks = new KeyedMutex();
  private readonly startedAt = Date.now();

  constructor(
    private readonly store: StateStore,
    /** Whether an endpoint is joined: a node starts only within its session. */
    private readonly sessions: EndpointSessions,
    private readonly docker: DockerApi,
    private readonly cache: ContainerCache,
    private readonly readiness: NetnsReadiness,
    private readonly log: Logger,
    private readonly opts: BinderOptions,
    private readonly on: BinderCallbacks,
  ) {
    this.labels = new ContainerLabels(docker, log, opts.tailscaleVersion);
    this.names = new NetworkNames(store, docker);
    this.joinCheck = new JoinCheck(store, docker, cache, this.names, (c, ep) => this.parse(c, ep), log, opts.joinCheckMs);
    this.snapshots = new Poller(opts.snapshotPollMs, () => this.pollSnapshots(), (e) => this.log.warn({ err: e.message }, 'network snapshot read failed'));
  }

  /**
   * Warms the label cache and binds from a full listing (start, reconnect, repair). Returns the
   * endpoints no container has any more that are older than `orphanAfterMs`: their containers
   * went away while nobody told us (plugin down, dockerd killed).
   */
  async prime(orphanAfterMs = 60_000): Promise<string[]> {
    const list = await this.docker.listContainers({});
    this.cache.rememberAll(list);
    for (const c of list) {
      for (const n of c.networks) {
        if (n.networkId && n.name && this.store.networks.has(n.networkId)) await this.names.learn(n.networkId, n.name);
        const ep = n.endpointId ? this.store.endpoints.get(n.endpointId) : undefined;
        if (!ep) continue;
        if (ep.containerId === c.id && ep.config) await this.refresh(ep, this.cache.get(c.id));
        else await this.bind(ep.id, c.id, 'listing');
      }
    }
    for (const cid of this.awaitingLabels.keys()) await this.labelsKnown(cid);
    // Recovered means joined before this process started: an endpoint joined since, which a
    // listing meets before its namespace is ready, is a new container and its node runs `up`.
    for (const ep of this.store.endpoints.values()) {
      if (ep.joinedAt !== undefined && Date.parse(ep.joinedAt) < this.startedAt) this.sessions.recover(ep.id);
      this.watchReadiness(ep);
    }
    // A fresh endpoint is listed only once its container's start is done, hence the age bound;
    // but one joined before this process started had all the time it needed: if no container
    // lists it, its container went away while the plugin was down.
    const listed = new Set(list.flatMap((c) => c.networks.map((n) => n.endpointId)).filter(Boolean));
    const now = Date.now();
    return [...this.store.endpoints.values()]
      .filter((ep) => !listed.has(ep.id) && (now - Date.parse(ep.createdAt) > orphanAfterMs || (ep.joinedAt !== undefined && Date.parse(ep.joinedAt) < this.startedAt - JOINED_BEFORE_START_MS)))
      .map((ep) => ep.id);
  }

  async onEvent(e: DockerEvent): Promise<void> {
    const attrs = e.Actor.Attributes ?? {};
    if (e.Type === 'container') {
      const id = e.Actor.ID;
      if (e.Action === 'create') {
        const { name = '', image = '', ...labels } = attrs;
        this.cache.remember(id, name, labels, image);
        await this.labelsKnown(id);
      } else if (e.Action === 'start') {
        for (const ep of this.endpointsOf(id)) this.watchReadiness(ep);
      } else if (e.Action === 'destroy') {
        this.cache.forget(id);
        this.awaitingLabels.delete(id);
      }
    } else if (e.Type === 'network' && e.Action === 'connect') {
      const netId = e.Actor.ID;
      const cid = attrs['container'];
      if (!isContainerId(cid) || !this.store.networks.has(netId)) return;
      if (this.endpointsOf(cid).some((ep) => ep.networkId === netId)) return;
      await this.readSnapshot(netId, 'event');
    }
  }

  /** Join's early check of the container it is probably for (join-check.ts). */
  checkAtJoin(ep: EndpointRecord, net: NetworkRecord): Promise<string | undefined> {
    return this.joinCheck.check(ep, net);
  }

  /** Join has answered: look for the container Docker ties to the endpoint. */
  joined(ep: EndpointRecord): void {
    const rec = this.store.endpoints.get(ep.id);
    if (!rec) return;
    if (rec.containerId) this.watchReadiness(rec);
    else {
      this.unbound.set(ep.id, Date.now());
      this.snapshots.kick();
    }
  }

  /** The endpoint leaves: no readiness for it until Docker joins it again. */
  forget(endpointId: string): void {
    this.unbound.delete(endpointId);
    for (const eps of this.awaitingLabels.values()) eps.delete(endpointId);
    this.readiness.cancel(endpointId);
    this.emitted.delete(endpointId);
  }

  /** The endpoint's record is deleted. */
  deleted(endpointId: string): void {
    this.forget(endpointId);
  }

  async stop(): Promise<void> {
    await Promise.all([this.snapshots.stop(), this.readiness.stop()]);
  }

  private async pollSnapshots(): Promise<boolean> {
    const nets = new Set<string>();
    for (const [id, since] of this.unbound) {
      const rec = this.store.endpoints.get(id);
      if (!rec || rec.containerId) this.unbound.delete(id);
      else if (Date.now() - since > this.opts.unboundGiveUpMs) {
        this.unbound.delete(id);
        this.log.warn({ endpoint: shortId(id) }, 'Docker has not named the container of this endpoint yet; the connect event or the repair listing will');
      } else nets.add(rec.networkId);
    }
    for (const netId of nets) await this.readSnapshot(netId, 'snapshot');
    return this.unbound.size > 0;
  }

  /** Binds every endpoint a network snapshot names a real container for. */
  private async readSnapshot(netId: string, via: BindVia): Promise<void> {
    const snap = await this.docker.inspectNetwork(netId);
    await this.names.learn(netId, snap.name);
    for (const [cid, epId] of Object.entries(snap.containers)) {
      const ep = this.store.endpoints.get(epId);
      if (ep && isContainerId(cid) && ep.containerId !== cid) await this.bind(epId, cid, via);
    }
  }

  private parse(c: KnownContainer, ep: EndpointRecord): Promise<ParsedLabels> {
    return this.labels.parse(c, ep.id, this.store.networks.get(ep.networkId));
  }

  private endpointsOf(containerId: string): EndpointRecord[] {
    return [...this.store.endpoints.values()].filter((e) => e.containerId === containerId);
  }

  /**
   * Ties an endpoint to the container Docker named for it, once; then parses that container's
   * labels. Serialised per endpoint: the snapshot poll, the connect event and a listing often
   * name the same container at the same moment.
   */
  async bind(endpointId: string, containerId: string, via: BindVia): Promise<EndpointRecord | undefined> {
    if (!isContainerId(containerId)) return undefined;
    return this.locks.run(endpointId, () => this.bindLocked(endpointId, containerId, via));
  }

  private async bindLocked(endpointId: string, containerId: string, via: BindVia): Promise<EndpointRecord | undefined> {
    const ep = this.store.endpoints.get(endpointId);
    if (!ep) return undefined;
    if (ep.containerId && ep.containerId !== containerId) {
      this.log.error(
        { endpoint: endpointId, boundTo: ep.containerId, boundVia: ep.boundVia, otherContainer: containerId, via },
        'BUG: Docker named a second container for an endpoint; keeping the first binding',
      );
      return ep;
    }
    if (ep.containerId === containerId && (ep.config || ep.configError)) return ep;
    this.unbound.delete(endpointId);
    const known = await this.cache.lookup(containerId);
    if (!known) {
      const waiting = this.awaitingLabels.get(containerId) ?? new Map<string, BindVia>();
      waiting.set(endpointId, via);
      this.awaitingLabels.set(containerId, waiting);
      this.log.warn({ endpoint: shortId(endpointId), container: shortId(containerId), via }, 'labels of this container are not known yet: the endpoint waits for its create event or a listing');
      return undefined;
    }
    return this.configure(ep, known, via);
  }

  /** A container's labels arrived: configure the endpoints that waited for them. */
  private async labelsKnown(containerId: string): Promise<void> {
    const waiting = this.awaitingLabels.get(containerId);
    const known = this.cache.get(containerId);
    if (!waiting || !known) return;
    this.awaitingLabels.delete(containerId);
    for (const [epId, via] of waiting) {
      await this.locks.run(epId, async () => {
        const ep = this.store.endpoints.get(epId);
        if (ep && !ep.containerId) await this.configure(ep, known, via);
      });
    }
  }

  private async configure(ep: EndpointRecord, c: KnownContainer, via: BindVia): Promise<EndpointRecord | undefined> {
    const parsed = await this.parse(c, ep);
    const rec = await this.store.patchEndpoint(ep.id, {
      containerId: c.id,
      containerName: c.name,
      boundVia: via,
      boundAt: new Date().toISOString(),
      ...(parsed.ok ? { config: parsed.config, configError: undefined } : { config: undefined, configError: parsed.message }),
    });
    if (!rec) return undefined;
    if (parsed.ok) {
      this.log.info({ endpoint: shortId(ep.id), container: shortId(c.id), name: c.name, hostname: parsed.config.hostname, via }, 'endpoint bound');
    } else {
      this.log.error({ endpoint: shortId(ep.id), container: shortId(c.id), name: c.name, via, err: parsed.message }, 'container labels are invalid');
    }
    this.on.bound(rec);
    this.watchReadiness(rec);
    return rec;
  }

  /** A repair listing re-reads a bound container's labels: a node running on other ones is restarted. */
  private async refresh(ep: EndpointRecord, c: KnownContainer | undefined): Promise<void> {
    if (!c) return;
    const parsed = await this.parse(c, ep);
    const next = parsed.ok ? { config: parsed.config, configError: undefined } : { config: undefined, configError: parsed.message };
    if (JSON.stringify(next.config) === JSON.stringify(ep.config) && next.configError === ep.configError) return;
    const rec = await this.store.patchEndpoint(ep.id, next);
    if (!rec) return;
    this.log.warn({ endpoint: shortId(ep.id), container: shortId(c.id), was: ep.config?.hostname, now: rec.config?.hostname, err: rec.configError }, 'container configuration changed: restarting its node');
    this.emitted.delete(ep.id);
    await this.on.reconfigured(rec);
    this.watchReadiness(rec);
  }

  /** Once the endpoint is bound, joined and its namespace exists: `ready`, within the session it began in. */
  private watchReadiness(ep: EndpointRecord): void {
    const session = this.sessions.active(ep.id);
    if (!session || !ep.config || !ep.sandboxKey || !ep.containerId || this.emitted.has(ep.id)) return;
    const { recovered } = session;
    const id = ep.id;
    this.readiness.watch(
      id,
      localSandboxPath(ep.sandboxKey, this.opts.hostDockerRun),
      () => {
        const cur = this.store.endpoints.get(id);
        const net = cur && this.store.networks.get(cur.networkId);
        if (!cur?.config || !cur.sandboxKey || !net || this.emitted.has(id) || !session.active) return;
        this.emitted.add(id);
        void this.names.named(net).then(
          (named) => {
            if (!session.active) return;
            const sinceJoinMs = cur.joinedAt ? Date.now() - Date.parse(cur.joinedAt) : undefined;
            this.log.info({ endpoint: shortId(id), container: shortId(cur.containerId), sinceJoinMs, recovered }, 'endpoint ready for tailscale');
            this.on.ready(cur, named, session);
          },
          (e: Error) => {
            // The repair pass makes it ready again once Docker answers.
            this.emitted.delete(id);
            this.log.warn({ endpoint: shortId(id), err: e.message }, 'the network\'s name could not be read from Docker; the node starts on the next repair pass');
          },
        );
      },
      () => this.log.warn({ endpoint: shortId(id), sandbox: ep.sandboxKey }, 'network namespace never appeared; leaving it to the repair loop'),
    );
  }
}
