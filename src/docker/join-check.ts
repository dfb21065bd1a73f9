import type { ContainerSummary, DockerApi } from './api.js';
import type { ContainerCache, KnownContainer } from './container-cache.js';
import type { ParsedLabels } from './container-labels.js';
import type { NetworkNames } from './network-names.js';
import type { EndpointRecord, NetworkRecord, StateStore } from '../state/store.js';
import type { Logger } from '../util/log.js';
import { shortId } from '../util/short-id.js';
import { within } from '../util/timeout.js';

/**
 * Join's label check guesses its container: the one `created` container that lists the network
 * without an endpoint. A `docker run` (or `compose up`) starts a container seconds after making
 * it; one made longer ago and never started is more likely a bystander while a running container
 * is connected, and its labels must not fail that connect (issue 22). Such a container still gets
 * its error when it starts: its own node fails with it.
 */
export const JOIN_CANDIDATE_MAX_AGE_MS = 60_000;

/**
 * Join may refuse a container whose labels are invalid, so `docker run` prints why; but Join must
 * never ask Docker about the container being joined (its lock is held), so the container is
 * guessed from a listing, and the check only refuses, it never binds.
 */
export class JoinCheck {
  constructor(
    private readonly store: StateStore,
    private readonly docker: Pick<DockerApi, 'listContainers'>,
    private readonly cache: ContainerCache,
    private readonly names: NetworkNames,
    private readonly parse: (c: KnownContainer, ep: EndpointRecord) => Promise<ParsedLabels>,
    private readonly log: Logger,
    /** How long Join may spend on it (a listing), ms. */
    private readonly budgetMs: number,
  ) {}

  /**
   * Join's early check: when exactly one `created` container lists this network without an
   * endpoint, this Join is almost surely for it, and if its labels are invalid the Join fails so
   * `docker run` prints why. This never binds: a `docker network connect` of a running
   * container looks the same while another container sits created but unstarted.
   */
  async check(ep: EndpointRecord, net: NetworkRecord): Promise<string | undefined> {
    const ctl = new AbortController();
    const found = await within(this.budgetMs, this.candidates(net, ctl.signal), ctl).catch((e: Error) => {
      this.log.debug({ endpoint: shortId(ep.id), err: e.message }, 'join check: listing failed');
      return undefined;
    });
    if (found?.length !== 1) return undefined;
    const c = found[0]!;
    if (Date.now() - c.createdMs > JOIN_CANDIDATE_MAX_AGE_MS) {
      this.log.debug({ endpoint: shortId(ep.id), candidate: shortId(c.id) }, 'join check: the only candidate was created long ago; not judging this Join by its labels');
      return undefined;
    }
    const parsed = await this.parse(c, ep);
    if (!parsed.ok) {
      this.log.error({ endpoint: shortId(ep.id), container: shortId(c.id), name: c.name, err: parsed.message }, 'container labels are invalid: Join refused');
      return parsed.message;
    }
    return undefined;
  }

  private async candidates(net: NetworkRecord, signal: AbortSignal): Promise<ContainerSummary[]> {
    const [list, name] = await Promise.all([this.docker.listContainers({ createdOnly: true, signal }), this.names.of(net.id)]);
    this.cache.rememberAll(list);
    const taken = new Set(this.store.endpointsOf(net.id).map((e) => e.containerId));
    return list.filter(
      (c) => !taken.has(c.id) && c.networks.some((n) => (n.networkId === net.id || (!n.networkId && n.name === name)) && !n.endpointId),
    );
  }
}
