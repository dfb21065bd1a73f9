import type { DockerApi } from './docker/api.js';
import type { EndpointBinder } from './docker/binder.js';
import { DELETE_REPLY_GAP_MS, miscountsConcurrentDeletes } from './docker/engine-quirks.js';
import type { Driver } from './driver/driver.js';
import type { ContainerNames } from './node/container-names.js';
import type { NodeManager } from './node/manager.js';
import type { Metrics } from './ops/metrics.js';
import type { Logger } from './util/log.js';
import type { ReplySpacer } from './util/reply-spacer.js';

/** The parts of the endpoint flow a repair pass mends. */
export interface Repairable {
  binder: EndpointBinder;
  driver: Driver;
  nodes: NodeManager;
  names: ContainerNames;
  metrics: Metrics;
}

/**
 * One repair pass: the listing that removes endpoints whose containers are gone, the garbage no
 * endpoint uses, the containers' name rules something moved, and the host's port forwards. `done` once one has succeeded
 * (readiness).
 */
export class RepairPass {
  done = false;

  constructor(
    private readonly flow: Repairable,
    private readonly log: Logger,
  ) {}

  async run(): Promise<void> {
    const { binder, driver, nodes, names, metrics } = this.flow;
    try {
      const orphans = await binder.prime();
      for (const id of orphans) await driver.forgetEndpoint(id);
      const removed = await nodes.collectGarbage();
      if (removed.length) this.log.info({ removed }, 'removed node files no endpoint uses');
      await names.repair();
      await driver.forwards.repair();
      metrics.repairPass(true, orphans.length, removed.length);
      this.done = true;
    } catch (e) {
      metrics.repairPass(false, 0, 0);
      throw e;
    }
  }
}

/** Each (re)connect may find another engine: DeleteEndpoint replies are spaced for those that need it. */
export async function checkEngine(flow: { docker: DockerApi; deleteReplies: ReplySpacer }, log: Logger): Promise<void> {
  const version = await flow.docker.engineVersion!();
  const gap = miscountsConcurrentDeletes(version) ? DELETE_REPLY_GAP_MS : 0;
  if (gap === flow.deleteReplies.gap) return;
  flow.deleteReplies.setGap(gap);
  log.info({ engine: version, gapMs: gap }, gap ? 'this Docker miscounts endpoints deleted at once (fixed in 28.1): DeleteEndpoint replies are spaced' : 'DeleteEndpoint replies are not spaced');
}
