import Docker from 'dockerode';
import type { FastifyInstance } from 'fastify';
import { dockerodeApi } from './docker/api.js';
import { EventsWatcher } from './docker/events.js';
import { Driver } from './driver/driver.js';
import { EndpointSessions } from './state/endpoint-sessions.js';
import { EndpointBinder } from './docker/binder.js';
import { ContainerCache } from './docker/container-cache.js';
import type { DockerEvent } from './docker/events.js';
import { stoppingContainer } from './docker/stop-signals.js';
import { DELETE_REPLY_GAP_MS, miscountsConcurrentDeletes } from './docker/engine-quirks.js';
import { NetnsReadiness } from './host/netns-readiness.js';
import { shortId } from './util/short-id.js';
import { TaskTracker } from './util/tasks.js';
import { join } from 'node:path';
import { Metrics } from './ops/metrics.js';
import { OPS_SOCKET, buildOpsServer } from './ops/server.js';
import { loadOpsToken, tokenWhere } from './ops/ops-auth.js';
import { endpointView } from './ops/endpoint-view.js';
import { WarmRunner, childEnv, runCommand } from './util/exec.js';
import type { Settings } from './config/settings.js';
import { IprouteHostNetwork } from './host/network.js';
import { endpointHost, networkHost } from './host/host-spec.js';
import { reconcileHost } from './host/reconciler.js';
import type { Logger } from './util/log.js';
import { NodeManager } from './node/manager.js';
import { findTailscale } from './node/tailscale-binaries.js';
import { DEFAULT_RESTART_POLICY } from './node/restart-policy.js';
import { buildServer } from './driver/server.js';
import { claimSocketPath, restrictSocket } from './driver/socket.js';
import { StateStore } from './state/store.js';
import { ownDataDir } from './state/data-dir-owner.js';
import { Leftovers } from './node/daemon-ownership.js';

export interface App {
  server: FastifyInstance;
  driver: Driver;
  store: StateStore;
  watcher: EventsWatcher;
  nodes: NodeManager;
  close(): Promise<void>;
}

/** Starts of recovered endpoints are spread over this window: a host reboot brings all at once. */
// Small: a resumed node costs one status call, and the 2 cores are the real limit, not bursts.
const RECOVERY_JITTER_MS = 200;
/** How often the full listing repairs what events missed (dropped events, stream gaps). */
const REPAIR_INTERVAL_MS = 60_000;
/** How long a stop waits for background work (node starts, drains, repairs) to finish. */
const CLOSE_DEADLINE_MS = 10_000;
/** When the repair pass after start runs again (see binder.ts JOINED_BEFORE_START_MS). */
const SETTLE_REPAIR_MS = 10_000;

/** Wires the plugin together and starts serving; the order matters for a restart mid-traffic. */
export async function startApp(settings: Settings, log: Logger): Promise<App> {
  // Everything tslink writes (state, keys, logs) is for root's eyes only.
  process.umask(0o077);
  // Named to a tslink refused the directory: only the managed plugin's manifest maps Docker's exec root.
  const owner = await ownDataDir(settings.dataDir, log, undefined, settings.hostDockerRun !== undefined ? 'managed plugin' : 'legacy install');
  // Taken while no other tslink can start a daemon here: every leftover is in this one scan.
  const leftovers = await Leftovers.find(settings.dataDir);
  if (leftovers.count) log.warn({ count: leftovers.count }, 'found tailscaled left by an earlier plugin process: each is stopped before its node starts again');
  const store = new StateStore(settings.dataDir);
  // A record with values that could never reach a host command is quarantined, never fatal.
  for (const bad of await store.load({ network: (n) => void networkHost(n), endpoint: (e) => void endpointHost(e) })) log.error(bad, 'state file quarantined');
  // Join's ip batch finds a process started ahead (WarmRunner): ≈ 3 ms less per docker run.
  const ipAhead = new WarmRunner(runCommand, 'ip', ['-force', '-batch', '-']);
  const host = new IprouteHostNetwork(ipAhead.runner);
  // Repair the host before answering Docker, so the first call sees a consistent host.
  await reconcileHost(store, host, log);

  const bins = await findTailscale(runCommand, settings.tsPath, childEnv()).catch((e: Error) => e);
  if (bins instanceof Error) log.error({ err: bins.message }, 'tailscale binaries unusable: nodes will fail until this is fixed');
  else if (bins.isTestDouble) {
    log.error({ tailscale: bins.tailscale, version: bins.version }, 'the tailscale found is tslink\'s TEST DOUBLE, not Tailscale: no node will reach a tailnet; set TS_PATH to a real Tailscale or install a published plugin image');
  } else log.info({ tailscale: bins.tailscale, version: bins.version }, 'tailscale found');

  const docker = dockerodeApi(new Docker({ socketPath: settings.dockerSocket }));
  // Metrics read the watcher and the nodes when scraped; both exist before the first scrape.
  let watcher: EventsWatcher | undefined;
  const metrics = new Metrics({
    watcher: () => watcher?.state() ?? { connected: false, lastEventAgeMs: null, processed: 0, dropped: 0, reconnects: 0, queued: 0 },
    endpointStates: () => [...store.endpoints.values()].map((ep) => nodes.operInfo(ep).state),
  });
  const nodes = new NodeManager(store, settings, runCommand, bins, log, {
    drainWaitMs: settings.drainWaitMs,
    pollMs: settings.statusPollMs,
    restart: { ...DEFAULT_RESTART_POLICY, cooldownMs: settings.crashCooldownMs },
  }, (prev, next) => metrics.nodeStatus(prev, next, store.endpoints.get(next.endpoint)?.joinedAt), leftovers);
  const tasks = new TaskTracker(log);

  // The life of an endpoint, top to bottom: Docker's Join → binder (which container, which
  // labels, does its namespace exist) → node manager (tailscaled in that namespace).
  const cache = new ContainerCache(() => docker.listContainers({}));
  const readiness = new NetnsReadiness({ pollMs: 20, giveUpMs: 120_000, onError: (e) => log.error({ err: e.message }, 'namespace check failed') });
  const sessions = new EndpointSessions();
  const binder = new EndpointBinder(store, sessions, docker, cache, readiness, log, {
    joinCheckMs: 200, snapshotPollMs: 25, unboundGiveUpMs: 10_000, hostDockerRun: settings.hostDockerRun,
    tailscaleVersion: bins instanceof Error ? undefined : bins.version,
  }, {
    bound: (ep) => {
      if (ep.configError) nodes.invalid(ep);
    },
    reconfigured: (ep) => nodes.leave(ep.id),
    ready: (ep, net, session) => {
      const jitterMs = session.recovered ? Math.floor(Math.random() * RECOVERY_JITTER_MS) : 0;
      tasks.run('node start', () => nodes.ready(ep, net, session, { jitterMs }), { endpoint: shortId(ep.id) });
    },
  });
  const driver = new Driver(store, host, settings, log, {
    // Without a usable Tailscale no container could get its node: say so at docker run.
    checkJoin: (ep, net) => (bins instanceof Error ? Promise.resolve(`tslink: this plugin cannot start Tailscale (${bins.message})`) : binder.checkAtJoin(ep, net)),
    joined: (ep) => {
      sessions.join(ep.id);
      binder.joined(ep);
    },
    leaving: async (ep) => {
      sessions.leave(ep.id);
      binder.forget(ep.id);
      await nodes.leave(ep.id);
    },
    deleted: async (ep) => {
      sessions.delete(ep.id);
      binder.deleted(ep.id);
      await nodes.forget(ep.id);
    },
    operInfo: (ep) => nodes.operInfo(ep),
  });
  const onEvent = async (e: DockerEvent): Promise<void> => {
    const stopping = stoppingContainer(e);
    if (stopping) tasks.run('drain', () => nodes.stopping(stopping), { container: shortId(stopping) });
    await binder.onEvent(e);
  };

  // Each (re)connect lists containers, so the cache is warm and nothing missed stays missed;
  // the same listing runs periodically, removes endpoints whose containers are gone, and
  // collects what no endpoint uses any more (runtime dirs, status files, ephemeral state).
  let recovered = false;
  const repairOnce = async (): Promise<void> => {
    try {
      const orphans = await binder.prime();
      for (const id of orphans) await driver.forgetEndpoint(id);
      const removed = await nodes.collectGarbage();
      if (removed.length) log.info({ removed }, 'removed node files no endpoint uses');
      metrics.repairPass(true, orphans.length, removed.length);
      recovered = true;
    } catch (e) {
      metrics.repairPass(false, 0, 0);
      throw e;
    }
  };
  // Each (re)connect may find another engine (dockerd upgraded and restarted meanwhile).
  const checkEngine = async (): Promise<void> => {
    const version = await docker.engineVersion!();
    const gap = miscountsConcurrentDeletes(version) ? DELETE_REPLY_GAP_MS : 0;
    if (gap !== driver.deleteReplies.gap) {
      driver.deleteReplies.setGap(gap);
      log.info({ engine: version, gapMs: gap }, gap ? 'this Docker miscounts endpoints deleted at once (fixed in 28.1): DeleteEndpoint replies are spaced' : 'DeleteEndpoint replies are not spaced');
    }
  };
  const events = new EventsWatcher(docker.openEvents, onEvent, log, {
    minBackoffMs: settings.eventsMinBackoffMs,
    maxBackoffMs: settings.eventsMaxBackoffMs,
    queueSize: settings.eventsQueueSize,
  }, {
    connected: () => {
      tasks.run('repair', repairOnce);
      tasks.run('engine version', checkEngine);
    },
    disconnected: () => metrics.streamReconnecting(),
    dropped: () => metrics.eventDropped(),
    handled: (e, ok) => metrics.eventHandled(e, ok),
  });
  watcher = events;
  events.start();
  // A second pass soon after start: endpoints joined just before a restart are judged only once
  // their containers had time to list them (binder.ts JOINED_BEFORE_START_MS).
  const settle = setTimeout(() => {
    if (events.state().connected) tasks.run('repair', repairOnce);
  }, SETTLE_REPAIR_MS);
  settle.unref();
  const repair = setInterval(() => {
    if (events.state().connected) tasks.run('repair', repairOnce);
  }, REPAIR_INTERVAL_MS);
  repair.unref();

  // Operations: always a unix socket in the data directory, TCP only when asked for (one
  // listener each: a Fastify instance listens once).
  const opsSources = {
    metrics,
    endpoints: () => [...store.endpoints.values()].map((ep) => endpointView(ep, nodes.operInfo(ep))),
    watcher: () => events.state(),
    recovered: () => recovered,
  };
  const ops = [buildOpsServer(opsSources)];
  const opsSocket = join(settings.dataDir, OPS_SOCKET);
  await claimSocketPath(opsSocket);
  await ops[0]!.listen({ path: opsSocket });
  await restrictSocket(opsSocket);
  if (settings.metricsListen) {
    const at = settings.metricsListen.lastIndexOf(':');
    // TCP reaches beyond root: every route but /healthz needs the token (its file, never its value, is logged).
    const token = await loadOpsToken(settings.dataDir);
    const where = tokenWhere(token.file, settings.hostDockerRun !== undefined);
    if (token.narrowed) log.warn({ tokenFile: token.file }, 'the operations token file was readable by others: its mode is now 0600');
    log.info({ tokenFile: token.file, created: token.created }, `the TCP operations listener needs "Authorization: Bearer <token>" on every route but /healthz; the token is in ${where}`);
    const tcp = buildOpsServer(opsSources, { auth: { token: token.token, where } });
    await tcp.listen({ host: settings.metricsListen.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(settings.metricsListen.slice(at + 1)) });
    ops.push(tcp);
  }

  const server = buildServer(driver, log, (url, status, seconds) => metrics.request(url, status, seconds));
  await claimSocketPath(settings.socketPath);
  await server.listen({ path: settings.socketPath });
  await restrictSocket(settings.socketPath);
  log.info({ socket: settings.socketPath, ops: opsSocket, metricsListen: settings.metricsListen, dataDir: settings.dataDir, networks: store.networks.size, endpoints: store.endpoints.size }, 'tslink serving');
  return {
    server,
    driver,
    store,
    watcher: events,
    nodes,
    async close() {
      clearInterval(repair);
      clearTimeout(settle);
      events.stop();
      await Promise.all(ops.map((o) => o.close()));
      binder.stop();
      await server.close();
      const left = await tasks.close(CLOSE_DEADLINE_MS);
      if (left) log.warn({ tasks: left }, 'stopping with background work still running');
      await nodes.shutdown();
      ipAhead.close();
      await owner.release();
    },
  };
}
