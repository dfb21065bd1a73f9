import type { Settings } from '../config/settings.js';
import { freeWireguardPort } from '../host/wireguard-ports.js';
import { PortForwarder } from '../host/port-forwarder.js';
import { endpointHost, HostSpecError, linkNames, networkHost, parseDockerId, type EndpointHost, type NetworkHost } from '../host/host-spec.js';
import { contains, parseCidr, subnetHalves } from '../host/ipv4.js';
import type { HostNetwork } from '../host/network.js';
import type { EndpointRecord, NetworkRecord, StateStore } from '../state/store.js';
import { ReplySpacer } from '../util/reply-spacer.js';
import { coalesce } from '../util/coalesce.js';
import { KeyedMutex } from '../util/keyed-mutex.js';
import type { Logger } from '../util/log.js';
import { shortId } from '../util/short-id.js';
import { conflict, internal, invalid, notFound, stateFailed } from './errors.js';
import type * as P from './protocol.js';
import { NO_LIFECYCLE, type EndpointLifecycle } from './lifecycle.js';
import { networkRecord } from './network-request.js';

/** The part of a network record a repeated CreateNetwork must match to be the same network. */
const identity = (n: NetworkRecord): string => JSON.stringify([n.subnet, n.gateway, n.mtu, n.config]);

/**
 * The libnetwork remote-driver semantics, independent of HTTP.
 *
 * Locks, always taken in this order and never the other way: a network's (`net:<id>`: create,
 * delete), then an endpoint's (`ep:<id>`: create, join, leave, delete; a record is read only
 * once its lock is held), then the rules (a coalesced sync, see `syncRules`). A network being
 * deleted refuses new endpoints and joins at once.
 */
export class Driver {
  private readonly locks = new KeyedMutex();
  private readonly deleting = new Set<string>();
  private readonly addRules: () => Promise<void>;
  private readonly removeRules: () => Promise<void>;
  /** The host's forwards of the containers' WireGuard ports (the repair pass syncs them too). */
  readonly forwards: PortForwarder;

  constructor(
    private readonly store: StateStore,
    private readonly host: HostNetwork,
    private readonly settings: Settings,
    private readonly log: Logger,
    private readonly lifecycle: EndpointLifecycle = NO_LIFECYCLE,
    /** Spaces DeleteEndpoint replies on engines that miscount concurrent deletes (engine-quirks.ts). */
    readonly deleteReplies: ReplySpacer = new ReplySpacer(),
  ) {
    // One rules sync serves every network change that arrives while another is running, and a
    // new network's rule never waits for the (slow) removal of old ones: two lanes.
    this.addRules = coalesce(() => this.host.syncRules(() => this.validNetworks(), { only: 'add' }));
    this.removeRules = coalesce(() => this.host.syncRules(() => this.validNetworks(), { only: 'remove' }));
    this.forwards = new PortForwarder(host, () => this.store.endpoints.values(), settings.wireguardPorts, () => this.store.networks.size > 0, log);
  }

  capabilities(): P.CapabilitiesResponse {
    return { Scope: 'local', ConnectivityScope: 'local' };
  }

  /** Networks whose records hold valid values; a bad one is logged and left out, never fails the others. */
  validNetworks(): NetworkHost[] {
    return [...this.store.networks.values()].flatMap((n) => {
      try {
        return [networkHost(n)];
      } catch (e) {
        this.log.error({ network: shortId(n.id), err: (e as Error).message }, 'network record is invalid: its rules are left out');
        return [];
      }
    });
  }

  async createNetwork(req: P.CreateNetworkRequest): Promise<void> {
    const rec = networkRecord(req, this.settings);
    await this.locks.run(`net:${rec.id}`, async () => {
      const existing = this.store.networks.get(rec.id);
      if (existing) {
        if (identity(existing) === identity(rec)) return; // Docker may repeat a create
        throw conflict(`tslink: network ${shortId(rec.id)} exists already with other settings; it is kept as it is`);
      }
      // The record (two fsyncs) and the rules (an iptables-restore) do not wait for each other:
      // putNetwork puts the record in memory at once, where the rules sync reads it.
      const [saved, synced] = await Promise.allSettled([this.store.putNetwork(rec), this.addRules()]);
      if (saved.status === 'rejected') {
        // The store took the record back out of memory: take its rule back out too.
        if (synced.status === 'fulfilled') await this.removeRules().catch((e: Error) => this.log.warn({ network: shortId(rec.id), err: e.message }, 'network not saved: its rule stays until the next rules sync'));
        throw saved.reason;
      }
      if (synced.status === 'rejected') {
        const e = synced.reason as Error;
        await this.store.deleteNetwork(rec.id);
        this.log.error({ network: shortId(rec.id), err: e.message }, 'network rules failed');
        throw internal(`tslink: could not set up NAT and filter rules for the network: ${e.message}; check that iptables works on the host`);
      }
    }).catch(stateFailed);
    this.log.info({ network: shortId(rec.id), subnet: rec.subnet, mtu: rec.mtu, tags: rec.config.tags, ephemeral: rec.config.ephemeral }, 'network created');
  }

  async deleteNetwork(req: P.NetworkRequest): Promise<void> {
    const id = req.NetworkID;
    await this.locks.run(`net:${id}`, async () => {
      if (!this.store.networks.has(id)) return; // Docker may repeat a delete; gone is gone
      this.deleting.add(id);
      try {
        // A CreateEndpoint that passed its check just before may still add one: look again.
        for (let eps = this.store.endpointsOf(id); eps.length; eps = this.store.endpointsOf(id)) await this.removeEndpoints(eps.map((e) => e.id));
        // Out of the store's memory first, so the rules sync removes the network's rule.
        await this.store.deleteNetworkAfter(id, async () => {
          try {
            await this.removeRules();
          } catch (e) {
            throw internal(`tslink: could not remove the network's NAT rule: ${(e as Error).message}; check that iptables works on the host, then remove the network again`);
          }
        });
      } finally {
        this.deleting.delete(id);
      }
    }).catch(stateFailed);
    if (!this.store.networks.size) await this.forwards.sync(); // the last network takes the forward chain with it
    this.log.info({ network: shortId(id) }, 'network deleted');
  }

  async createEndpoint(req: P.CreateEndpointRequest): Promise<P.CreateEndpointResponse> {
    const net = this.network(req.NetworkID);
    const id = parseDockerId(req.EndpointID);
    const cidr = parseCidr(req.Interface?.Address ?? '', 1, 32);
    if (!req.Interface?.Address) {
      throw invalid('tslink: Docker gave the endpoint no IPv4 address; tslink needs IPAM to assign one (do not use --ipam-driver=null)');
    }
    if (!id || !cidr || !contains(networkHost(net).subnet, cidr.address)) {
      throw invalid(`tslink: endpoint address ${JSON.stringify(req.Interface.Address.slice(0, 40))} is not an IPv4 address in the network's subnet ${net.subnet}`);
    }
    return this.locks.run(`ep:${id}`, async () => {
      const existing = this.store.endpoints.get(id);
      if (existing) {
        if (existing.networkId === net.id && existing.address === cidr.address) return {};
        throw conflict(`tslink: endpoint ${shortId(id)} exists already on another network or with another address`);
      }
      // Names and port are chosen and recorded before the first await: no two endpoints share one.
      const eps = [...this.store.endpoints.values()];
      const rec: EndpointRecord = { id, networkId: net.id, address: cidr.address, prefixLen: cidr.prefixLen, ...linkNames(id, new Set(eps.flatMap((e) => [e.hostIf, e.containerIf]))), createdAt: new Date().toISOString(), wireguardPort: freeWireguardPort(this.settings.wireguardPorts, eps) };
      await this.store.putEndpoint(rec);
      if (!this.store.networks.has(net.id) || this.deleting.has(net.id)) {
        await this.store.deleteEndpoint(id);
        throw notFound(`tslink: network ${shortId(net.id)} was removed meanwhile`);
      }
      this.log.debug({ network: shortId(net.id), endpoint: shortId(id), address: req.Interface?.Address }, 'endpoint created');
      return {};
    }).catch(stateFailed);
  }

  async join(req: P.JoinRequest): Promise<P.JoinResponse> {
    this.network(req.NetworkID);
    return this.locks.run(`ep:${req.EndpointID}`, async () => {
      // Read under the lock: a Delete that ran first leaves nothing for this Join to set up.
      const net = this.network(req.NetworkID);
      const ep = this.endpoint(req.NetworkID, req.EndpointID);
      const [netHost, epHost] = this.hostSpecs(net, ep);
      // The label check (a container listing) and the link (one ip batch) do not depend on each
      // other: Join takes the longer of the two, not their sum.
      const [configError, failed] = await Promise.all([
        this.lifecycle.checkJoin(ep, net),
        this.host.setUpEndpoint(netHost, epHost).then(() => undefined, (e: Error) => e),
      ]);
      if (configError) {
        // Refused: the container must not start half-configured, so the link goes again now.
        if (!failed) await this.host.tearDownEndpoints([epHost]).catch((e: Error) => this.log.warn({ endpoint: shortId(ep.id), err: e.message }, 'join refused: link removal failed; DeleteEndpoint removes it'));
        throw invalid(configError, 'TSLINK_LABEL_INVALID');
      }
      if (failed) {
        this.log.error({ endpoint: shortId(ep.id), err: failed.message }, 'join: host networking failed');
        throw internal(`tslink: could not create the container's network interface: ${failed.message}`);
      }
      // A patch, not a put: the binder may have bound the endpoint to its container meanwhile.
      const rec = (await this.store.patchEndpoint(ep.id, { sandboxKey: req.SandboxKey, joinedAt: new Date().toISOString() })) ?? ep;
      this.log.info({ network: shortId(net.id), endpoint: shortId(ep.id), sandbox: req.SandboxKey }, 'endpoint joined');
      queueMicrotask(() => this.lifecycle.joined(rec, net));
      this.forwards.syncSoon(); // after the reply: the container's tailscaled starts after Join returns anyway
      return {
        InterfaceName: { SrcName: ep.containerIf, DstPrefix: 'eth' },
        Gateway: netHost.gateway,
        // The subnet's two halves via the gateway outrank the on-link route of the interface's
        // prefix, so even a peer in the same subnet is reached through the host, where the
        // filter decides (only WireGuard between containers). No proxy ARP, so no sysctl, which
        // a managed plugin could not write anyway (its /proc/sys is read-only).
        // The gateway's own /32 on-link keeps it a direct route: Docker refuses a gateway that
        // resolves through another gateway ("Direct route for the gateway ... could not be found").
        StaticRoutes: [
          { Destination: `${netHost.gateway}/32`, RouteType: 1 as const },
          ...subnetHalves(netHost.subnet).map((Destination) => ({ Destination, RouteType: 0 as const, NextHop: netHost.gateway })),
        ],
        // The plugin NATs the network itself; Docker must not add docker_gwbridge as well.
        DisableGatewayService: true,
      };
    }).catch(stateFailed);
  }

  async leave(req: P.EndpointRequest): Promise<void> {
    await this.locks.run(`ep:${req.EndpointID}`, async () => {
      const ep = this.store.endpoints.get(req.EndpointID);
      if (!ep) return;
      await this.lifecycle.leaving(ep);
      await this.store.patchEndpoint(ep.id, { sandboxKey: undefined, joinedAt: undefined });
      this.log.info({ endpoint: shortId(ep.id) }, 'endpoint left');
    }).catch(stateFailed);
    // Its port stops reaching anything before Leave returns (a burst of leaves shares the rewrite).
    await this.forwards.sync();
  }

  async deleteEndpoint(req: P.EndpointRequest): Promise<void> {
    await this.removeEndpoints([req.EndpointID]).catch(stateFailed);
    await this.deleteReplies.wait();
  }

  /** Removes an endpoint Docker will never delete (its container vanished while we were away). */
  async forgetEndpoint(id: string): Promise<void> {
    const ep = this.store.endpoints.get(id);
    if (!ep) return;
    this.log.warn({ endpoint: shortId(id), container: ep.containerName }, 'endpoint has no container any more: removing it');
    await this.removeEndpoints([id]);
  }

  operInfo(req: P.EndpointRequest): P.OperInfoResponse {
    const ep = this.endpoint(req.NetworkID, req.EndpointID);
    return {
      Value: {
        network: ep.networkId,
        address: `${ep.address}/${ep.prefixLen}`,
        hostInterface: ep.hostIf,
        joined: ep.joinedAt !== undefined,
        ...(ep.containerId ? { containerId: ep.containerId } : {}),
        ...this.lifecycle.operInfo(ep),
      },
    };
  }

  /**
   * Removes endpoints while holding every one's lock, taken one by one in ID order (so two
   * removals can never wait on each other): nodes stop first (drain, logout, in parallel), then
   * every link goes in one `ip` call, then the records, and only then are the locks released, so
   * a Join queued behind finds no record and makes nothing.
   */
  private async removeEndpoints(ids: readonly string[]): Promise<void> {
    let release!: () => void;
    const done = new Promise<void>((r) => (release = r));
    const held: Promise<void>[] = [];
    let joined = false;
    for (const id of [...new Set(ids)].sort()) {
      await new Promise<void>((acquired) => held.push(this.locks.run(`ep:${id}`, () => (acquired(), done))));
    }
    try {
      const gone = ids.flatMap((id) => this.store.endpoints.get(id) ?? []);
      joined = gone.some((ep) => ep.joinedAt);
      await Promise.all(gone.filter((ep) => ep.joinedAt).map((ep) => this.lifecycle.leaving(ep)));
      const specs = gone.flatMap((ep) => {
        try {
          return [endpointHost(ep)];
        } catch {
          return []; // an invalid record never reached the host: nothing to remove there
        }
      });
      try {
        await this.host.tearDownEndpoints(specs);
      } catch (e) {
        throw internal(`tslink: could not remove the endpoints' interfaces (${specs.map((s) => s.hostIf).slice(0, 5).join(', ')}): ${(e as Error).message}`);
      }
      for (const ep of gone) {
        await this.store.deleteEndpoint(ep.id);
        await this.lifecycle.deleted(ep);
        this.log.info({ endpoint: shortId(ep.id) }, 'endpoint deleted');
      }
    } finally {
      release();
      await Promise.all(held);
    }
    if (joined) await this.forwards.sync(); // removed without a Leave (the container vanished): each held a forward
  }

  private hostSpecs(net: NetworkRecord, ep: EndpointRecord): [NetworkHost, EndpointHost] {
    try {
      return [networkHost(net), endpointHost(ep)];
    } catch (e) {
      if (!(e instanceof HostSpecError)) throw e;
      this.log.error({ network: shortId(net.id), endpoint: shortId(ep.id), err: e.message }, 'stored record is invalid');
      throw internal(`tslink: the plugin's record of this network or endpoint is invalid (${e.message}); remove the network and create it again`, 'TSLINK_INTERNAL');
    }
  }

  private network(id: string): NetworkRecord {
    const net = this.store.networks.get(id);
    if (!net || this.deleting.has(id)) {
      throw notFound(`tslink: network ${shortId(id)} is not known to this plugin (its record in ${this.settings.dataDir}/networks is missing); remove the network and create it again`);
    }
    return net;
  }

  private endpoint(networkId: string, id: string): EndpointRecord {
    const ep = this.store.endpoints.get(id);
    if (!ep || ep.networkId !== networkId) {
      throw notFound(`tslink: endpoint ${shortId(id)} on network ${shortId(networkId)} is not known to this plugin; start the container again`);
    }
    return ep;
  }
}
