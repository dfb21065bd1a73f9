import type { DockerApi } from './api.js';
import type { KnownContainer } from './container-cache.js';
import { hasTslinkLabel, imageLabelsRefused, labelsFromImage, parseContainerLabels } from '../config/labels.js';
import type { NetworkRecord } from '../state/store.js';
import type { Logger } from '../util/log.js';

/** Images whose labels are kept (an image's labels never change). */
const MAX_IMAGES = 256;

export type ParsedLabels = Awaited<ReturnType<typeof parseContainerLabels>>;

/**
 * What a container's labels say for an endpoint on a network: parsed in the light of the
 * network's tags and the Tailscale found, and refused where they are the image's (Docker copies an
 * image's LABELs into its containers), unless the network takes image labels (issue 22).
 */
export class ContainerLabels {
  private readonly images = new Map<string, Record<string, string>>();

  constructor(
    private readonly docker: Pick<DockerApi, 'imageLabels'>,
    private readonly log: Logger,
    /** The version of the `tailscale` found at start: labels asking for more are refused. */
    private readonly tailscaleVersion: string | undefined,
  ) {}

  async parse(c: KnownContainer, endpointId: string, net: NetworkRecord | undefined): Promise<ParsedLabels> {
    if (net?.config.imageLabels !== true && c.image && hasTslinkLabel(c.labels)) {
      const fromImage = labelsFromImage(c.labels, await this.imageLabels(c.image));
      if (fromImage.length) {
        const message = imageLabelsRefused(fromImage, c.imageName || c.image);
        return { ok: false, errors: [message], message };
      }
    }
    return parseContainerLabels(c.labels, { containerName: c.name, endpointId, networkTags: net?.config.tags, networkRouting: net?.config, tailscaleVersion: this.tailscaleVersion });
  }

  /** An image's labels, read once per image; none for an image that is gone (docker rmi -f). */
  private async imageLabels(image: string): Promise<Record<string, string>> {
    const known = this.images.get(image);
    if (known) return known;
    const labels = await this.docker.imageLabels(image).catch((e: Error) => {
      this.log.warn({ image, err: e.message }, 'the image of a container could not be read; its labels count as the container\'s own');
      return undefined;
    });
    if (!labels) return {};
    if (this.images.size >= MAX_IMAGES) this.images.delete(this.images.keys().next().value!);
    this.images.set(image, labels);
    return labels;
  }
}
