import { shortId } from '../util/short-id.js';
import type { Logger } from '../util/log.js';
import type { HostNetwork } from '../host/network.js';
import { linkNames } from '../host/network.js';
import { invalid, internal, notFound } from './errors.js';
import { parseNetworkOptions } from '../config/network-options.js';
import type { Settings } from '../config/settings.js';
import { KeyedMutex } from '../util/keyed-mutex.js';
import { subnetHalves } from '../host/ipv4.js';
import type { EndpointRecord, NetworkRecord, StateStore } from '../state/store.js';
import type * as P from './protocol.js';


/** What the rest of tslink does at each step of an endpoint's life; given at construction. */
export interface EndpointLifecycle {
  /** Before a Join answers: may fail it with the container's configuration error. Bounded. */
  checkJoin(ep: EndpointRecord, net: NetworkRecord): Promise<void>;
  /** After a Join has answered; the node layer starts from here. Must not block. */
  joined(ep: EndpointRecord, net: NetworkRecord): void;
  /** Before an endpoint's host side is removed; awaited (drain, logout). */
  leaving(ep: EndpointRecord): Promise<void>;
  /** After an endpoint's record is gone. */
  deleted(ep: EndpointRecord): Promise<void>;
  /** The node's part of EndpointOperInfo. */
  operInfo(ep: EndpointRecord): Record<string, unknown>;
}

/** A lifecycle that does nothing: the driver alone (tests, tools). */
export const NO_LIFECYCLE: EndpointLifecycle = {
  checkJoin: async () => undefined,
  joined: () => undefined,
  leaving: async () => undefined,
  deleted: async () => undefined,
  operInfo: () => ({}),
};

/** The libnetwork remote-driver semantics, independent of HTTP. */
export class Driver {
  private readonly locks = new KeyedMutex();

  constructor(
    private readonly store: StateStore,
    private readonly host: HostNetwork,
    private readonly settings: Settings,
    private readonly log: Logger,
    private readonly lifecycle: EndpointLifecycle = NO_LIFECYCLE,
  ) {}

  capabilities(): P.CapabilitiesResponse {
    return { Scope: 'local', ConnectivityScope: 'local' };
  }

  async createNetwork(req: P.CreateNetworkRequest): Promise<void> {
    const id = req.NetworkID;
    const opts = req.Options ?? {};
    const parsed = parseNetworkOptions(opts['com.docker.network.generic'] ?? {}, {
      envAuthKeyPresent: this.settings.authKey !== undefined,
    });
    if (!parsed.ok) throw invalid(parsed.message);
    if (opts['com.docker.network.internal'] === true || opts['com.docker.network.internal'] === 'true') {
      throw invalid(
        'tslink: a tslink network cannot be --internal: each container needs outside access to reach its Tailscale control server; create the network without --internal',
      );
    }
    const v6 = opts['com.docker.network.enable_ipv6'];
    if (v6 === true || v6 === 'true' || (req.IPv6Data?.length ?? 0) > 0) {
      throw invalid('tslink: IPv6 on the Docker side of a tslink network is not supported yet; create the network without --ipv6 (containers still get their Tailscale IPv6 address)');
    }
    const v4 = req.IPv4Data ?? [];
    if (v4.length !== 1) {
      throw invalid(`tslink: a tslink network needs exactly one IPv4 subnet, got ${v4.length}; give one --subnet (or none, and let Docker choose)`);
    }
    const pool = v4[0]!;
    const gateway = pool.Gateway?.split('/')[0];
    if (!gateway) throw invalid('tslink: the network has no IPv4 gateway address; give --gateway or let Docker choose one');
    const prefixLen = Number(pool.Pool.split('/')[1]);
    if (!(prefixLen >= 1 && prefixLen <= 30)) {
      throw invalid(`tslink: subnet ${pool.Pool} is too small or not IPv4; give a --subnet from /1 to /30 (the gateway and each container need an address)`);
    }
    const rec: NetworkRecord = {
      id,
      createdAt: new Date().toISOString(),
      subnet: pool.Pool,
      gateway,
      mtu: parsed.config.mtu,
      config: parsed.config,
    };
    await this.store.putNetwork(rec);
    try {
      await this.locks.run('rules', () => this.host.syncRules([...this.store.networks.values()]));
    } catch (e) {
      await this.store.deleteNetwork(id);
      this.log.error({ network: shortId(id), err: (e as Error).message }, 'network rules failed');
      throw internal(`tslink: could not set up NAT and filter rules for the network: ${(e as Error).message}; check that iptables works on the host`);
    }
    this.log.info({ network: shortId(id), subnet: rec.subnet, mtu: rec.mtu, tags: rec.config.tags, ephemeral: rec.config.ephemeral }, 'network created');
  }

  async deleteNetwork(req: P.NetworkRequest): Promise<void> {
    const id = req.NetworkID;
    const rec = this.store.networks.get(id);
    if (!rec) return; // Docker may repeat a delete; gone is gone
    for (const ep of this.store.endpointsOf(id)) await this.removeEndpoint(ep);
    await this.store.deleteNetwork(id);
    await this.locks.run('rules', () => this.host.syncRules([...this.store.networks.values()]));
    this.log.info({ network: shortId(id) }, 'network deleted');
  }

  async createEndpoint(req: P.CreateEndpointRequest): Promise<P.CreateEndpointResponse> {
    const net = this.network(req.NetworkID);
    const cidr = req.Interface?.Address ?? '';
    const [address, prefix] = cidr.split('/');
    if (!address || !prefix) {
      throw invalid('tslink: Docker gave the endpoint no IPv4 address; tslink needs IPAM to assign one (do not use --ipam-driver=null)');
    }
    const existing = this.store.endpoints.get(req.EndpointID);
    if (existing) return {};
    const rec: EndpointRecord = {
      id: req.EndpointID,
      networkId: net.id,
      address,
      prefixLen: Number(prefix),
      ...linkNames(req.EndpointID),
      createdAt: new Date().toISOString(),
    };
    await this.store.putEndpoint(rec);
    this.log.debug({ network: shortId(net.id), endpoint: shortId(rec.id), address: cidr }, 'endpoint created');
    return {};
  }

  async join(req: P.JoinRequest): Promise<P.JoinResponse> {
    const net = this.network(req.NetworkID);
    const ep = this.endpoint(req.NetworkID, req.EndpointID);
    return this.locks.run(ep.id, async () => {
      await this.lifecycle.checkJoin(ep, net);
      try {
        await this.host.setUpEndpoint(net, ep);
      } catch (e) {
        this.log.error({ endpoint: shortId(ep.id), err: (e as Error).message }, 'join: host networking failed');
        throw internal(`tslink: could not create the container's network interface: ${(e as Error).message}`);
      }
      // A patch, not a put: the Join check may have bound the endpoint to its container meanwhile.
      const rec = (await this.store.patchEndpoint(ep.id, { sandboxKey: req.SandboxKey, joinedAt: new Date().toISOString() })) ?? ep;
      this.log.info({ network: shortId(net.id), endpoint: shortId(ep.id), sandbox: req.SandboxKey }, 'endpoint joined');
      queueMicrotask(() => this.lifecycle.joined(rec, net));
      return {
        InterfaceName: { SrcName: ep.containerIf, DstPrefix: 'eth' },
        Gateway: net.gateway,
        // The subnet's two halves via the gateway outrank the on-link route of the interface's
        // prefix, so even a peer in the same subnet is reached through the host, where the
        // filter decides (only WireGuard between containers). No proxy ARP, so no sysctl, which
        // a managed plugin could not write anyway (its /proc/sys is read-only).
        // The gateway's own /32 on-link keeps it a direct route: Docker refuses a gateway that
        // resolves through another gateway ("Direct route for the gateway ... could not be found").
        StaticRoutes: [
          { Destination: `${net.gateway}/32`, RouteType: 1 as const },
          ...subnetHalves(net.subnet).map((Destination) => ({ Destination, RouteType: 0 as const, NextHop: net.gateway })),
        ],
        // The plugin NATs the network itself; Docker must not add docker_gwbridge as well.
        DisableGatewayService: true,
      };
    });
  }

  async leave(req: P.EndpointRequest): Promise<void> {
    const ep = this.store.endpoints.get(req.EndpointID);
    if (!ep) return;
    await this.locks.run(ep.id, async () => {
      await this.lifecycle.leaving(ep);
      await this.store.patchEndpoint(ep.id, { sandboxKey: undefined, joinedAt: undefined });
      this.log.info({ endpoint: shortId(ep.id) }, 'endpoint left');
    });
  }

  async deleteEndpoint(req: P.EndpointRequest): Promise<void> {
    const ep = this.store.endpoints.get(req.EndpointID);
    if (!ep) return;
    await this.locks.run(ep.id, () => this.removeEndpoint(ep));
  }

  /** Removes an endpoint Docker will never delete (its container vanished while we were away). */
  async forgetEndpoint(id: string): Promise<void> {
    const ep = this.store.endpoints.get(id);
    if (!ep) return;
    this.log.warn({ endpoint: shortId(id), container: ep.containerName }, 'endpoint has no container any more: removing it');
    await this.locks.run(ep.id, () => this.removeEndpoint(ep));
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

  private async removeEndpoint(ep: EndpointRecord): Promise<void> {
    if (this.store.endpoints.get(ep.id)?.joinedAt) await this.lifecycle.leaving(ep);
    try {
      await this.host.tearDownEndpoint(ep);
    } catch (e) {
      throw internal(`tslink: could not remove the endpoint's interface ${ep.hostIf}: ${(e as Error).message}`);
    }
    await this.store.deleteEndpoint(ep.id);
    await this.lifecycle.deleted(ep);
    this.log.info({ endpoint: shortId(ep.id) }, 'endpoint deleted');
  }

  private network(id: string): NetworkRecord {
    const net = this.store.networks.get(id);
    if (!net) {
      throw notFound(
        `tslink: network ${shortId(id)} is not known to this plugin (its record in ${this.settings.dataDir}/networks is missing); remove the network and create it again`,
      );
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
