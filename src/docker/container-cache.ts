import type { ContainerSummary } from './api.js';

export interface KnownContainer {
  id: string;
  name: string;
  labels: Record<string, string>;
  /** The image's name or ID, as Docker gave it ('' when unknown). */
  image: string;
  /** The image's name as Docker shows it, for messages ('' when unknown). */
  imageName?: string;
}

/** A real container ID as Docker names it: 64 lower-case hex digits (never `ep-…` placeholders). */
export const isContainerId = (s: string | undefined): s is string => typeof s === 'string' && /^[0-9a-f]{64}$/.test(s);

/**
 * Container labels by ID, from `create` events and listings. Labels of a container never
 * change, so an entry is good until the container is destroyed. A lookup that misses runs one
 * listing, shared by every lookup that misses meanwhile (a burst of starts costs one listing).
 */
export class ContainerCache {
  private readonly known = new Map<string, KnownContainer>();
  private listing?: Promise<void>;

  constructor(private readonly list: () => Promise<ContainerSummary[]>) {}

  get(id: string): KnownContainer | undefined {
    return this.known.get(id);
  }

  remember(id: string, name: string, labels: Record<string, string>, image: string, imageName = image): void {
    if (isContainerId(id)) this.known.set(id, { id, name: name.replace(/^\//, ''), labels, image, imageName });
  }

  rememberAll(list: readonly ContainerSummary[]): void {
    for (const c of list) this.remember(c.id, c.name, c.labels, c.image, c.imageName);
  }

  forget(id: string): void {
    this.known.delete(id);
  }

  /** The container's labels, listing once if they are not cached; undefined if Docker has no such container. */
  async lookup(id: string): Promise<KnownContainer | undefined> {
    // A listing already under way may have been read before this container existed: if it
    // misses, one listing of our own answers.
    for (let attempt = 0; attempt < 2 && !this.known.has(id); attempt++) {
      const joined = this.listing !== undefined;
      this.listing ??= this.list()
        .then((l) => this.rememberAll(l))
        .finally(() => (this.listing = undefined));
      await this.listing;
      if (!joined) break;
    }
    return this.known.get(id);
  }
}
