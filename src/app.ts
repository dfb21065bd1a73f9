import Docker from 'dockerode';
import type { FastifyInstance } from 'fastify';
import { dockerodeApi } from './docker/api.js';
import { EventsWatcher } from './docker/events.js';
import { Driver } from './driver/driver.js';
import { EndpointBinder } from './docker/binder.js';
import { childEnv, runCommand } from './util/exec.js';
import type { Settings } from './config/grammar.js';
import { IprouteHostNetwork } from './host/network.js';
import { reconcileHost } from './host/reconciler.js';
import type { Logger } from './util/log.js';
import { NodeManager } from './node/manager.js';
import { findTailscale } from './node/tailscale-binaries.js';
import { DEFAULT_RESTART_POLICY } from './node/restart-policy.js';
import { buildServer } from './driver/server.js';
import { claimSocketPath, restrictSocket } from './driver/socket.js';
import { StateStore } from './state/store.js';
import type { EndpointRecord, NetworkRecord } from './state/store.js';

export interface App {
  server: FastifyInstance;
  driver: Driver;
  store: StateStore;
  watcher: EventsWatcher;
  nodes: NodeManager;
  close(): Promise<void>;
}

/** Starts of recovered endpoints are spread over this window: a host reboot brings all at once. */
const RECOVERY_JITTER_MS = 500;
/** How often the full listing repairs what events missed (dropped events, stream gaps). */
const REPAIR_INTERVAL_MS = 60_000;

/** Wires the plugin together and starts serving; the order matters for a restart mid-traffic. */
export async function startApp(settings: Settings, log: Logger): Promise<App> {
  // Everything tslink writes (state, keys, logs) is for root's eyes only.
  process.umask(0o077);
  const store = new StateStore(settings.dataDir);
  for (const bad of await store.load()) log.error(bad, 'unreadable state file ignored');
  const host = new IprouteHostNetwork(runCommand);
  const driver = new Driver(store, host, settings, log);
  // Repair the host before answering Docker, so the first call sees a consistent host.
  await reconcileHost(store, host, log);

  const bins = await findTailscale(runCommand, settings.tsPath, childEnv()).catch((e: Error) => e);
  if (bins instanceof Error) log.error({ err: bins.message }, 'tailscale binaries unusable: nodes will fail until this is fixed');
  else log.info({ tailscale: bins.tailscale, version: bins.version }, 'tailscale found');

  const docker = dockerodeApi(new Docker({ socketPath: settings.dockerSocket }));
  const binder = new EndpointBinder(store, docker, log, { joinInferenceMs: 200, netnsPollMs: 20, netnsGiveUpMs: 120_000, snapshotPollMs: 50, hostDockerRun: settings.hostDockerRun });
  const nodes = new NodeManager(store, settings, runCommand, bins, log, {
    drainWaitMs: settings.drainWaitMs,
    pollMs: settings.statusPollMs,
    restart: { ...DEFAULT_RESTART_POLICY, cooldownMs: settings.crashCooldownMs },
  });
  const live = new Set([...store.endpoints.values()].flatMap((e) => (e.config ? [e.config.hostname] : [])));
  const collected = await nodes.collectEphemeral(live);
  if (collected.length) log.info({ hostnames: collected }, 'removed state of ephemeral nodes no endpoint uses');

  driver.hooks = {
    checkJoin: (ep, net) => binder.inferAtJoin(ep, net),
    joined: (ep) => binder.joined(ep),
    leaving: async (ep) => {
      binder.forget(ep.id);
      await nodes.leave(ep.id);
    },
    deleted: (ep) => nodes.forget(ep.id),
    operInfo: (ep) => {
      const s = nodes.statuses.get(ep.id);
      if (s) return { ...s };
      if (ep.configError) return { state: 'failed', lastError: ep.configError };
      return { state: 'waiting-for-container' };
    },
  };
  binder.on('ready', (ep: EndpointRecord, net: NetworkRecord, recovered: boolean) => {
    const jitterMs = recovered ? Math.floor(Math.random() * RECOVERY_JITTER_MS) : 0;
    void nodes.ready(ep, net, { jitterMs }).catch((e: Error) => log.error({ endpoint: ep.id.slice(0, 12), err: e.message }, 'node start failed'));
  });
  binder.on('bound', (ep: EndpointRecord) => {
    if (ep.configError) nodes.invalid(ep);
  });
  binder.on('stopping', (containerId: string) => void nodes.stopping(containerId));

  const watcher = new EventsWatcher(docker.openEvents, (e) => binder.onEvent(e), log, {
    minBackoffMs: settings.eventsMinBackoffMs,
    maxBackoffMs: settings.eventsMaxBackoffMs,
    queueSize: settings.eventsQueueSize,
  });
  // Each (re)connect lists containers, so the cache is warm and nothing missed stays missed;
  // the same listing runs periodically and removes endpoints whose containers are gone.
  const repairOnce = async (): Promise<void> => {
    for (const id of await binder.prime()) await driver.forgetEndpoint(id);
  };
  watcher.on('connected', () => void repairOnce().catch((e: Error) => log.warn({ err: e.message }, 'container listing failed')));
  watcher.start();
  const repair = setInterval(() => {
    if (watcher.state().connected) void repairOnce().catch((e: Error) => log.warn({ err: e.message }, 'repair failed'));
  }, REPAIR_INTERVAL_MS);
  repair.unref();

  const server = buildServer(driver, log);
  await claimSocketPath(settings.socketPath);
  await server.listen({ path: settings.socketPath });
  await restrictSocket(settings.socketPath);
  log.info({ socket: settings.socketPath, dataDir: settings.dataDir, networks: store.networks.size, endpoints: store.endpoints.size }, 'tslink serving');
  return {
    server,
    driver,
    store,
    watcher,
    nodes,
    async close() {
      clearInterval(repair);
      watcher.stop();
      binder.stop();
      await server.close();
      await nodes.shutdown();
    },
  };
}
