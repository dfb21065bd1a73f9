/** What the endpoint binder is given and what it tells (binder.ts). */
import type { EndpointSession } from '../state/endpoint-sessions.js';
import type { EndpointRecord, NetworkRecord } from '../state/store.js';

/** Who named the endpoint's container: always Docker (a listing, a network snapshot, an event). */
export type BindVia = 'snapshot' | 'event' | 'listing';

export interface BinderOptions {
  /** How long Join may spend checking the labels of the container it is probably for (a snapshot read, ms). */
  joinCheckMs: number;
  /** How often the network snapshot is read for endpoints Docker has not tied to a container yet. */
  snapshotPollMs: number;
  /** How long an endpoint waits for Docker to name its container before the repair loop takes over. */
  unboundGiveUpMs: number;
  /** Where Docker's exec root is mounted in a managed plugin (sandbox paths are mapped there). */
  hostDockerRun?: string;
  /** The version of the `tailscale` found at start: labels asking for more are refused. */
  tailscaleVersion?: string;
}

export interface BinderCallbacks {
  /** The endpoint is tied to its container and its labels are parsed (`configError` when invalid). */
  bound(ep: EndpointRecord): void;
  /** The endpoint's configuration changed after it was bound (a repair found other labels): stop its node; `ready` follows. */
  reconfigured(ep: EndpointRecord): Promise<void>;
  /** Bound to valid configuration and its namespace exists: the node may start. */
  ready(ep: EndpointRecord, net: NetworkRecord, session: EndpointSession): void;
}
