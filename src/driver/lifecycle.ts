import type { EndpointRecord, NetworkRecord } from '../state/store.js';
import type { EndpointReport } from '../node/status.js';

/** What the rest of tslink does at each step of an endpoint's life; given at construction. */
export interface EndpointLifecycle {
  /** Before a Join answers: the container's configuration error, if one can be known in time. Bounded. */
  checkJoin(ep: EndpointRecord, net: NetworkRecord): Promise<string | undefined>;
  /** After a Join has answered; the node layer starts from here. Must not block. */
  joined(ep: EndpointRecord, net: NetworkRecord): void;
  /** Before an endpoint's host side is removed; awaited (drain, logout). */
  leaving(ep: EndpointRecord): Promise<void>;
  /** After an endpoint's record is gone. */
  deleted(ep: EndpointRecord): Promise<void>;
  /** The node's part of EndpointOperInfo; undefined without a node layer (the driver alone). */
  operInfo(ep: EndpointRecord): EndpointReport | undefined;
}

/** A lifecycle that does nothing: the driver alone (tests, tools). */
export const NO_LIFECYCLE: EndpointLifecycle = {
  checkJoin: async () => undefined,
  joined: () => undefined,
  leaving: async () => undefined,
  deleted: async () => undefined,
  operInfo: () => undefined,
};
