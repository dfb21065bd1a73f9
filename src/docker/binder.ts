import { EventEmitter } from 'node:events';
import type { ContainerSummary, DockerApi } from './api.js';
import type { DockerEvent } from './events.js';
import { invalid } from '../driver/errors.js';
import { parseContainerLabels } from '../config/grammar.js';
import type { Logger } from '../util/log.js';
import { localSandboxPath, mountPoints, resolveSandboxPath } from '../host/netns.js';
import type { EndpointRecord, NetworkRecord, StateStore } from '../state/store.js';
import { within } from '../util/timeout.js';

export interface KnownContainer {
  name: string;
  labels: Record<string, string>;
}

export type BindVia = 'join' | 'snapshot' | 'event' | 'listing';

export interface BinderOptions {
  /** How long Join may spend inferring its container (facts §1: a snapshot read, ms). */
  joinInferenceMs: number;
  /** How often pending endpoints are checked for their network namespace. */
  netnsPollMs: number;
  /** After this long without a namespace, an endpoint stops being polled (the reconciler retries). */
  netnsGiveUpMs: number;
  /** How often the network snapshot is read for endpoints Join could not bind (0: events only). */
  snapshotPollMs?: number;
  mountPoints?: () => Promise<Set<string>>;
  hostDockerRun?: string;
}

const ATTRIBUTES_NOT_LABELS = new Set(['name', 'image']);
const STOPPING_SIGNALS = new Set(['2', '3', '9', '15', 'SIGINT', 'SIGQUIT', 'SIGKILL', 'SIGTERM']);
const short = (id: string): string => id.slice(0, 12);

/**
 * Gives each endpoint its container's configuration without ever asking Docker about the
 * container being started: labels come from `create` events and listings, the endpoint–container
 * tie from Join-time inference or the `network connect` event. Emits 'ready' (endpoint, network)
 * once an endpoint is bound to valid configuration and its network namespace exists, and
 * 'stopping' (container ID) when Docker kills or a container dies.
 */
export class EndpointBinder extends EventEmitter {
  readonly containers = new Map<string, KnownContainer>();
  private readonly netNames = new Map<string, string>();
  private readonly pending = new Map<string, { since: number; recovered: boolean }>();
  private readonly emitted = new Set<string>();
  private timer?: NodeJS.Timeout;
  private readonly mounts: () => Promise<Set<string>>;

  constructor(
    private readonly store: StateStore,
    private readonly docker: DockerApi,
    private readonly log: Logger,
    private readonly opts: BinderOptions,
  ) {
    super();
    this.mounts = opts.mountPoints ?? (() => mountPoints());
  }

  /**
   * Warms the label cache and restores bindings from a full listing (start, reconnect, repair).
   * Returns the endpoints no container has any more that are older than `orphanAfterMs`: their
   * containers went away while nobody told us (plugin down, dockerd killed).
   */
  async prime(orphanAfterMs = 60_000): Promise<string[]> {
    const list = await this.docker.listContainers({});
    for (const c of list) this.remember(c.id, c.name, c.labels);
    for (const c of list) {
      for (const n of c.networks) {
        const ep = n.endpointId ? this.store.endpoints.get(n.endpointId) : undefined;
        if (ep && ep.containerId !== c.id) await this.bind(ep.id, c.id, 'listing');
      }
    }
    for (const ep of this.store.endpoints.values()) this.watchReadiness(ep.id, true);
    // A fresh endpoint is listed only once its Join is done, hence the age bound.
    const listed = new Set(list.flatMap((c) => c.networks.map((n) => n.endpointId)).filter(Boolean));
    const now = Date.now();
    return [...this.store.endpoints.values()]
      .filter((ep) => !listed.has(ep.id) && now - Date.parse(ep.createdAt) > orphanAfterMs)
      .map((ep) => ep.id);
  }

  async onEvent(e: DockerEvent): Promise<void> {
    const attrs = e.Actor.Attributes ?? {};
    if (e.Type === 'container') {
      const id = e.Actor.ID;
      switch (e.Action) {
        case 'create':
          this.remember(id, attrs['name'] ?? '', Object.fromEntries(Object.entries(attrs).filter(([k]) => !ATTRIBUTES_NOT_LABELS.has(k))));
          break;
        case 'start':
          for (const ep of this.endpointsOf(id)) this.watchReadiness(ep.id);
          this.kick();
          break;
        case 'kill':
          // `docker kill -s HUP` (a reload) is a kill event too: only signals that stop the
          // container drain it, or a backend that keeps running would stay drained.
          if (STOPPING_SIGNALS.has(attrs['signal'] ?? '15')) this.emit('stopping', id, e.Action);
          break;
        case 'die':
          this.emit('stopping', id, e.Action);
          break;
        case 'destroy':
          this.containers.delete(id);
          break;
      }
    } else if (e.Type === 'network' && e.Action === 'connect') {
      const netId = e.Actor.ID;
      const cid = attrs['container'];
      if (!cid || !this.store.networks.has(netId)) return;
      if (this.endpointsOf(cid).some((ep) => ep.networkId === netId)) return; // bound at Join already
      const snap = await this.docker.inspectNetwork(netId);
      this.netNames.set(netId, snap.name);
      for (const [c, epId] of Object.entries(snap.containers)) {
        const ep = this.store.endpoints.get(epId);
        if (ep && ep.containerId !== c) await this.bind(epId, c, 'event');
      }
    }
  }

  /**
   * Join-time inference (facts §1): the container being joined is one of the `created`
   * containers that list this network with no endpoint yet; if exactly one, it is this one.
   * Bounded; on timeout or ambiguity the `network connect` event binds it a moment later.
   * Throws the grammar's error when the container's labels are invalid, so `docker run` prints it.
   */
  async inferAtJoin(ep: EndpointRecord, net: NetworkRecord): Promise<void> {
    if (ep.containerId) return;
    const t0 = performance.now();
    const ctl = new AbortController();
    const found = await within(this.opts.joinInferenceMs, this.candidates(net, ctl.signal), ctl).catch((e: Error) => {
      this.log.debug({ endpoint: short(ep.id), err: e.message }, 'join inference failed');
      return undefined;
    });
    const ms = Number((performance.now() - t0).toFixed(1));
    if (!found || found.length !== 1) {
      this.log.debug({ endpoint: short(ep.id), candidates: found?.length ?? 'timeout', ms }, 'join inference inconclusive; binding from the network snapshot or the connect event');
      this.awaitSnapshot(ep);
      return;
    }
    const bound = await this.bind(ep.id, found[0]!.id, 'join');
    this.log.debug({ endpoint: short(ep.id), container: short(found[0]!.id), ms }, 'join inference bound the endpoint');
    if (bound?.configError) throw invalid(bound.configError);
  }

  /** After Join: the endpoint may be bound already (inference), so start looking for its namespace. */
  joined(ep: EndpointRecord): void {
    this.watchReadiness(ep.id);
  }

  // Endpoints Join could not bind, by network. Docker lists the endpoint with its container in
  // the network snapshot as soon as the sandbox joined, which is before the connect event
  // reaches us under load; both paths bind, whichever comes first.
  private readonly unbound = new Map<string, Map<string, number>>();
  private snapshotTimer?: NodeJS.Timeout;

  private awaitSnapshot(ep: EndpointRecord): void {
    const every = this.opts.snapshotPollMs ?? 0;
    if (every <= 0) return;
    const m = this.unbound.get(ep.networkId) ?? new Map<string, number>();
    m.set(ep.id, Date.now());
    this.unbound.set(ep.networkId, m);
    this.snapshotTimer ??= setInterval(() => void this.pollSnapshots(), every);
  }

  private polling = false;

  private async pollSnapshots(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      for (const [netId, eps] of this.unbound) {
        for (const [id, since] of eps) {
          const rec = this.store.endpoints.get(id);
          if (!rec || rec.containerId || Date.now() - since > 10_000) eps.delete(id);
        }
        if (!eps.size) {
          this.unbound.delete(netId);
          continue;
        }
        const snap = await this.docker.inspectNetwork(netId).catch(() => undefined);
        for (const [cid, epId] of Object.entries(snap?.containers ?? {})) {
          if (eps.has(epId)) {
            eps.delete(epId);
            await this.bind(epId, cid, 'snapshot');
          }
        }
      }
    } finally {
      this.polling = false;
      if (!this.unbound.size && this.snapshotTimer) {
        clearInterval(this.snapshotTimer);
        this.snapshotTimer = undefined;
      }
    }
  }

  forget(endpointId: string): void {
    for (const eps of this.unbound.values()) eps.delete(endpointId);
    this.pending.delete(endpointId);
    this.emitted.delete(endpointId);
  }

  stop(): void {
    if (this.snapshotTimer) clearInterval(this.snapshotTimer);
    this.snapshotTimer = undefined;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async candidates(net: NetworkRecord, signal: AbortSignal): Promise<ContainerSummary[]> {
    const nameP = this.netNames.has(net.id)
      ? Promise.resolve(this.netNames.get(net.id)!)
      : this.docker.inspectNetwork(net.id).then((s) => (this.netNames.set(net.id, s.name), s.name));
    const [list, name] = await Promise.all([this.docker.listContainers({ createdOnly: true, signal }), nameP]);
    const taken = new Set([...this.store.endpoints.values()].filter((e) => e.networkId === net.id && e.containerId).map((e) => e.containerId));
    for (const c of list) this.remember(c.id, c.name, c.labels);
    return list.filter(
      (c) => !taken.has(c.id) && c.networks.some((n) => (n.networkId === net.id || (!n.networkId && n.name === name)) && !n.endpointId),
    );
  }

  private remember(id: string, name: string, labels: Record<string, string>): void {
    this.containers.set(id, { name: name.replace(/^\//, ''), labels });
  }

  private endpointsOf(containerId: string): EndpointRecord[] {
    return [...this.store.endpoints.values()].filter((e) => e.containerId === containerId);
  }

  /** Ties an endpoint to a container and validates its labels; idempotent. */
  async bind(endpointId: string, containerId: string, via: BindVia): Promise<EndpointRecord | undefined> {
    const ep = this.store.endpoints.get(endpointId);
    if (!ep) return undefined;
    if (ep.containerId === containerId && (ep.config || ep.configError)) return ep;
    let known = this.containers.get(containerId);
    if (!known) {
      // Labels missed (dropped event): a listing is a snapshot read and never waits on the lock.
      const list = await this.docker.listContainers({});
      for (const c of list) this.remember(c.id, c.name, c.labels);
      known = this.containers.get(containerId);
    }
    const parsed = parseContainerLabels(known?.labels ?? {}, { containerName: known?.name ?? '', endpointId });
    const rec = await this.store.patchEndpoint(endpointId, {
      containerId,
      containerName: known?.name,
      boundVia: via,
      boundAt: new Date().toISOString(),
      ...(parsed.ok ? { config: parsed.config, configError: undefined } : { config: undefined, configError: parsed.message }),
    });
    if (!rec) return undefined;
    if (parsed.ok) {
      this.log.info({ endpoint: short(endpointId), container: short(containerId), name: rec.containerName, hostname: parsed.config.hostname, via }, 'endpoint bound');
    } else {
      this.log.error({ endpoint: short(endpointId), container: short(containerId), name: rec.containerName, via, err: parsed.message }, 'container labels are invalid');
    }
    this.emit('bound', rec);
    this.watchReadiness(endpointId);
    return rec;
  }

  /** `recovered`: found by a listing rather than a Join just now (a restart brings many at once). */
  private watchReadiness(endpointId: string, recovered = false): void {
    const ep = this.store.endpoints.get(endpointId);
    if (!ep?.config || !ep.sandboxKey || this.emitted.has(endpointId)) return;
    if (!this.pending.has(endpointId)) this.pending.set(endpointId, { since: Date.now(), recovered });
    this.kick();
  }

  private kick(): void {
    void this.check();
    if (!this.timer && this.pending.size) this.timer = setInterval(() => void this.check(), this.opts.netnsPollMs);
  }

  private checking = false;

  private async check(): Promise<void> {
    if (this.checking || !this.pending.size) return;
    this.checking = true;
    try {
      const mounts = await this.mounts();
      for (const [id, { since, recovered }] of this.pending) {
        const ep = this.store.endpoints.get(id);
        if (!ep?.sandboxKey || !ep.config) {
          this.pending.delete(id);
          continue;
        }
        if (mounts.has(await resolveSandboxPath(localSandboxPath(ep.sandboxKey, this.opts.hostDockerRun)))) {
          this.pending.delete(id);
          this.emitted.add(id);
          const net = this.store.networks.get(ep.networkId);
          const sinceJoinMs = ep.joinedAt ? Date.now() - Date.parse(ep.joinedAt) : undefined;
          this.log.info({ endpoint: short(id), container: short(ep.containerId ?? ''), sinceJoinMs, recovered }, 'endpoint ready for tailscale');
          if (net) this.emit('ready', ep, net, recovered);
        } else if (Date.now() - since > this.opts.netnsGiveUpMs) {
          this.pending.delete(id);
          this.log.warn({ endpoint: short(id), sandbox: ep.sandboxKey }, 'network namespace never appeared; leaving it to the reconciler');
        }
      }
    } catch (e) {
      this.log.error({ err: (e as Error).message }, 'namespace check failed');
    } finally {
      this.checking = false;
      if (!this.pending.size && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    }
  }
}
