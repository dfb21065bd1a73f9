import Docker from 'dockerode';

/** Which events to read, as Docker's event filters (`type`, `event`, ...): the reader's choice (events.ts). */
export type EventFilters = Record<string, string[]>;

/** Opens Docker's event stream of the events `filters` let through, from `since` (a "seconds.nanoseconds" string), or from now. */
export type OpenEventStream = (since: string | undefined, signal: AbortSignal, filters: EventFilters) => Promise<NodeJS.ReadableStream>;

export interface ContainerSummary {
  id: string;
  name: string;
  state: string;
  labels: Record<string, string>;
  /** The image it was made from (an ID): its labels are the image's, not the container's own. */
  image: string;
  /** The image's name as the container was made with it (for messages). */
  imageName: string;
  /** When it was created (ms since the epoch; Docker lists whole seconds). */
  createdMs: number;
  /** Network ID → endpoint ID ('' while the container has not joined). Keyed by name as Docker has it. */
  networks: { name: string; networkId: string; endpointId: string }[];
}

export interface NetworkSnapshot {
  id: string;
  name: string;
  /** Container ID → endpoint ID. */
  containers: Record<string, string>;
}

/**
 * The few Docker reads tslink makes. None of them takes a container's lock, so all are safe
 * while the daemon waits on one of our handlers (GET /containers/<id>/json is deliberately absent).
 */
export interface DockerApi {
  openEvents: OpenEventStream;
  listContainers(opts: { createdOnly?: boolean; signal?: AbortSignal }): Promise<ContainerSummary[]>;
  inspectNetwork(id: string): Promise<NetworkSnapshot>;
  /** The labels an image carries (its name or ID). */
  imageLabels(image: string): Promise<Record<string, string>>;
  /** The engine's version ("20.10.24+dfsg1"). */
  engineVersion?(): Promise<string>;
}

export function dockerodeApi(docker: Docker = new Docker()): DockerApi {
  return {
    openEvents: async (since, signal, filters) =>
      (await docker.getEvents({
        filters,
        ...(since ? { since } : {}),
        abortSignal: signal,
      } as Docker.GetEventsOptions)) as NodeJS.ReadableStream,

    async listContainers({ createdOnly, signal }) {
      const list = await docker.listContainers({
        all: true,
        ...(createdOnly ? { filters: { status: ['created'] } } : {}),
        abortSignal: signal,
      } as Docker.ContainerListOptions);
      return list.map((c) => ({
        id: c.Id,
        name: (c.Names?.[0] ?? '').replace(/^\//, ''),
        state: c.State ?? '',
        labels: c.Labels ?? {},
        image: c.ImageID ?? c.Image ?? '',
        imageName: c.Image ?? '',
        createdMs: (c.Created ?? 0) * 1000,
        // Recovery must not trip over containers whose network settings Docker left out.
        networks: Object.entries(c.NetworkSettings?.Networks ?? {}).map(([name, n]) => ({
          name,
          networkId: n?.NetworkID ?? '',
          endpointId: n?.EndpointID ?? '',
        })),
      }));
    },

    async imageLabels(image) {
      const i = (await docker.getImage(image).inspect()) as { Config?: { Labels?: Record<string, string> | null } };
      return i.Config?.Labels ?? {};
    },

    async engineVersion() {
      return String(((await docker.version()) as { Version?: string }).Version ?? '');
    },

    async inspectNetwork(id) {
      const n = (await docker.getNetwork(id).inspect()) as {
        Id: string;
        Name: string;
        Containers?: Record<string, { EndpointID?: string }> | null;
      };
      const containers: Record<string, string> = {};
      for (const [cid, c] of Object.entries(n.Containers ?? {})) if (c?.EndpointID) containers[cid] = c.EndpointID;
      return { id: n.Id, name: n.Name, containers };
    },
  };
}
