import { MAX_MTU, MIN_MTU } from '../config/mtu.js';
import type { EndpointRecord, NetworkRecord } from '../state/store.js';
import { contains, parseIpv4, parseNetwork, type Ipv4Address, type Ipv4Network } from './ipv4.js';

declare const brand: unique symbol;
/** A link name tslink made: `tsh`/`tsc` and 12 hex digits (15 bytes, the kernel's limit). */
export type IfName = string & { readonly [brand]: 'IfName' };
/** A Docker object ID: 64 lower-case hex digits, or a Swarm-scoped network's 25 alphanumerics. */
export type DockerId = string & { readonly [brand]: 'DockerId' };

export const HOST_IF_PREFIX = 'tsh';
export const CONTAINER_IF_PREFIX = 'tsc';
const IF_NAME = /^ts[hc][0-9a-f]{12}$/;
const DOCKER_ID = /^[0-9a-f]{64}$/;
const SWARM_ID = /^[0-9a-z]{25}$/;

/** An endpoint's or container's ID. */
export const parseDockerId = (s: string): DockerId | undefined => (DOCKER_ID.test(s) ? (s as DockerId) : undefined);
/** A network's ID: local networks have Docker IDs, Swarm-scoped ones Swarm's. */
export const parseNetworkId = (s: string): DockerId | undefined => (DOCKER_ID.test(s) || SWARM_ID.test(s) ? (s as DockerId) : undefined);
export const parseIfName = (s: string): IfName | undefined => (IF_NAME.test(s) ? (s as IfName) : undefined);

/** What the host side of a network is made from, every field checked as its type. */
export interface NetworkHost {
  id: DockerId;
  subnet: Ipv4Network;
  gateway: Ipv4Address;
  mtu: number;
}

/** What the host side of an endpoint is made from, every field checked as its type. */
export interface EndpointHost {
  id: DockerId;
  address: Ipv4Address;
  hostIf: IfName;
  containerIf: IfName;
}

export class HostSpecError extends Error {}

/** A network record as host commands may use it; throws (with the field) when any value is not what it must be. */
export function networkHost(rec: Pick<NetworkRecord, 'id' | 'subnet' | 'gateway' | 'mtu'>): NetworkHost {
  const id = parseNetworkId(rec.id);
  const subnet = parseNetwork(rec.subnet, 1, 30);
  const gateway = parseIpv4(rec.gateway);
  if (!id) throw new HostSpecError('the network ID is not a Docker or Swarm ID');
  if (!subnet) throw new HostSpecError(`subnet ${JSON.stringify(rec.subnet.slice(0, 40))} is not an IPv4 network from /1 to /30`);
  if (!gateway || !contains(subnet, gateway)) throw new HostSpecError(`gateway ${JSON.stringify(rec.gateway.slice(0, 40))} is not an IPv4 address in ${subnet}`);
  if (!Number.isInteger(rec.mtu) || rec.mtu < MIN_MTU || rec.mtu > MAX_MTU) throw new HostSpecError(`MTU ${rec.mtu} is not from ${MIN_MTU} to ${MAX_MTU}`);
  return { id, subnet, gateway, mtu: rec.mtu };
}

/** An endpoint record as host commands may use it; throws when any value is not what it must be. */
export function endpointHost(rec: Pick<EndpointRecord, 'id' | 'address' | 'hostIf' | 'containerIf'>): EndpointHost {
  const id = parseDockerId(rec.id);
  const address = parseIpv4(rec.address);
  const hostIf = parseIfName(rec.hostIf);
  const containerIf = parseIfName(rec.containerIf);
  if (!id) throw new HostSpecError('the endpoint ID is not 64 hex digits');
  if (!address) throw new HostSpecError(`address ${JSON.stringify(rec.address.slice(0, 40))} is not an IPv4 address`);
  if (!hostIf?.startsWith(HOST_IF_PREFIX) || !containerIf?.startsWith(CONTAINER_IF_PREFIX)) throw new HostSpecError('the link names are not tslink link names');
  return { id, address, hostIf, containerIf };
}

/**
 * Link names for a new endpoint, unique among the live ones: 12 hex digits of its ID, taken
 * from the start, or from further along when another endpoint already has that prefix.
 */
export function linkNames(endpointId: DockerId, taken: ReadonlySet<string>): { hostIf: IfName; containerIf: IfName } {
  for (let at = 0; at + 12 <= endpointId.length; at += 4) {
    const part = endpointId.slice(at, at + 12);
    const hostIf = `${HOST_IF_PREFIX}${part}` as IfName;
    const containerIf = `${CONTAINER_IF_PREFIX}${part}` as IfName;
    if (!taken.has(hostIf) && !taken.has(containerIf)) return { hostIf, containerIf };
  }
  throw new HostSpecError('no free link name for this endpoint');
}

/** The alias every host-side link carries: whose link it is, so teardown removes only its own. */
export const linkAlias = (ep: Pick<EndpointHost, 'id'>): string => `tslink:${ep.id}`;
