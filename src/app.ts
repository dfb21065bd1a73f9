import Docker from 'dockerode';
import type { FastifyInstance } from 'fastify';
import { dockerodeApi, type DockerApi } from './docker/api.js';
import { EventsWatcher } from './docker/events.js';
import { Driver } from './driver/driver.js';
import { EndpointSessions } from './state/endpoint-sessions.js';
import { EndpointBinder } from './docker/binder.js';
import { ContainerCache } from './docker/container-cache.js';
import type { DockerEvent } from './docker/events.js';
import { stoppingContainer } from './docker/stop-signals.js';
import { NetnsReadiness } from './host/netns-readiness.js';
import { shortId } from './util/short-id.js';
import { TaskTracker } from './util/tasks.js';
import { Closers } from './util/closers.js';
import { ReplySpacer } from './util/reply-spacer.js';
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
import { ContainerNames } from './node/container-names.js';
import { RepairPass, checkEngine } from './repair.js';
import { findTailscale, type TailscaleBinaries } from './node/tailscale-binaries.js';
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

/** The binder's timings: Join's label check, the snapshot poll for unbound endpoints, when to give up on one. */
const BINDER_TIMINGS = { joinCheckMs: 200, snapshotPollMs: 25, unboundGiveUpMs: 10_000 };
/** How often a namespace is looked for after Join, and for how long. */
const NETNS_POLL_MS = 20;
const NETNS_GIVE_UP_MS = 120_000;

/**
 * Starts the plugin in phases, each closing what it opens: the state (data directory, records,
 * host), Tailscale, the endpoint flow (Docker → binder → nodes), the repairs (events and timers),
 * and the listeners. A closer is pushed as soon as its resource exists, so `close` runs in the
 * reverse order of building, and a start that fails half-way closes what it had opened.
 */
export async function startApp(settings: Settings, log: Logger): Promise<App> {
  const closers = new Closers(log);
  try {
    const state = await openState(settings, log, closers);
    const bins = await findTailscaleFor(settings, log);
    const flow = buildEndpointFlow(settings, log, state, bins, closers);
    const repairs = startRepairs(settings, log, flow, closers);
    const server = await listen(settings, log, flow, repairs, closers);
    return { server, driver: flow.driver, store: state.store, watcher: repairs.events, nodes: flow.nodes, close: () => closers.close() };
  } catch (e) {
    await closers.close();
    throw e;
  }
}

type OpenState = { store: StateStore; host: IprouteHostNetwork; leftovers: Leftovers };

/** The data directory (one tslink at a time), the leftovers of an earlier process, the records, the host repaired. */
async function openState(settings: Settings, log: Logger, closers: Closers): Promise<OpenState> {
  // Everything tslink writes (state, keys, logs) is for root's eyes only.
  process.umask(0o077);
  // Named to a tslink refused the directory: only the managed plugin's manifest maps Docker's exec root.
  const owner = await ownDataDir(settings.dataDir, log, undefined, settings.hostDockerRun !== undefined ? 'managed plugin' : 'legacy install');
  closers.push('data directory lock', () => owner.release());
  // Taken while no other tslink can start a daemon here: every leftover is in this one scan.
  const leftovers = await Leftovers.find(settings.dataDir);
  if (leftovers.count) log.warn({ count: leftovers.count }, 'found tailscaled left by an earlier plugin process: each is stopped before its node starts again');
  const store = new StateStore(settings.dataDir);
  // A record with values that could never reach a host command is quarantined, never fatal.
  for (const bad of await store.load({ network: (n) => void networkHost(n), endpoint: (e) => void endpointHost(e) })) log.error(bad, 'state file quarantined');
  // Join's ip batch finds a process started ahead (WarmRunner): ≈ 3 ms less per docker run.
  const ipAhead = new WarmRunner(runCommand, 'ip', ['-force', '-batch', '-']);
  closers.push('ip batch process', () => ipAhead.close());
  const host = new IprouteHostNetwork(ipAhead.runner, settings.wireguardPorts);
  // Repair the host before answering Docker, so the first call sees a consistent host.
  await reconcileHost(store, host, log, settings.wireguardPorts);
  return { store, host, leftovers };
}

async function findTailscaleFor(settings: Settings, log: Logger): Promise<TailscaleBinaries | Error> {
  const bins = await findTailscale(runCommand, settings.tsPath, childEnv()).catch((e: Error) => e);
  if (bins instanceof Error) log.error({ err: bins.message }, 'tailscale binaries unusable: nodes will fail until this is fixed');
  else if (bins.isTestDouble) {
    log.error({ tailscale: bins.tailscale, version: bins.version }, 'the tailscale found is tslink\'s TEST DOUBLE, not Tailscale: no node will reach a tailnet; set TS_PATH to a real Tailscale or install a published plugin image');
  } else log.info({ tailscale: bins.tailscale, version: bins.version }, 'tailscale found');
  return bins;
}

interface EndpointFlow {
  store: StateStore;
  docker: DockerApi;
  metrics: Metrics;
  nodes: NodeManager;
  names: ContainerNames;
  tasks: TaskTracker;
  binder: EndpointBinder;
  driver: Driver;
  deleteReplies: ReplySpacer;
}

/**
 * The life of an endpoint, top to bottom: Docker's Join (driver) → its session → the binder
 * (which container, which labels, does its namespace exist) → the node manager (tailscaled in
 * that namespace).
 */
function buildEndpointFlow(settings: Settings, log: Logger, state: OpenState, bins: TailscaleBinaries | Error, closers: Closers): EndpointFlow {
  const { store } = state;
  const docker = dockerodeApi(new Docker({ socketPath: settings.dockerSocket }));
  const metrics = new Metrics();
  const sessions = new EndpointSessions();
  const names = new ContainerNames(store, runCommand, settings.hostDockerRun, log, (id) => sessions.active(id)?.recovered === false, settings.wireguardPorts);
  closers.push('container name rules', () => names.settled());
  const nodes = new NodeManager(store, settings, runCommand, bins, log, {
    drainWaitMs: settings.drainWaitMs,
    pollMs: settings.statusPollMs,
    restart: { ...DEFAULT_RESTART_POLICY, cooldownMs: settings.crashCooldownMs },
  }, (prev, next) => {
    metrics.nodeStatus(prev, next, store.endpoints.get(next.endpoint)?.joinedAt);
    names.observe(next);
  }, state.leftovers);
  closers.push('nodes (they keep their login and state)', () => nodes.shutdown());
  const tasks = new TaskTracker(log);
  closers.push('background work', async () => {
    const left = await tasks.close(CLOSE_DEADLINE_MS);
    if (left) log.warn({ tasks: left }, 'stopping with background work still running');
  });
  const cache = new ContainerCache(() => docker.listContainers({}));
  const readiness = new NetnsReadiness({ pollMs: NETNS_POLL_MS, giveUpMs: NETNS_GIVE_UP_MS, onError: (e) => log.error({ err: e.message }, 'namespace check failed') });
  const binder = new EndpointBinder(store, sessions, docker, cache, readiness, log, {
    ...BINDER_TIMINGS, hostDockerRun: settings.hostDockerRun, tailscaleVersion: bins instanceof Error ? undefined : bins.version,
  }, {
    bound: (ep) => { if (ep.configError) nodes.invalid(ep); },
    reconfigured: (ep) => nodes.leave(ep.id),
    ready: (ep, net, session) => {
      const jitterMs = session.recovered ? Math.floor(Math.random() * RECOVERY_JITTER_MS) : 0;
      tasks.run('node start', () => nodes.ready(ep, net, session, { jitterMs }), { endpoint: shortId(ep.id) });
    },
  });
  closers.push('binder', () => binder.stop());
  const deleteReplies = new ReplySpacer();
  const driver = new Driver(store, state.host, settings, log, {
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
  }, deleteReplies);
  closers.push('WireGuard port forwards', () => driver.forwards.settled());
  return { store, docker, metrics, nodes, names, tasks, binder, driver, deleteReplies };
}

/**
 * Docker's event stream, and the listing that runs on each (re)connect, after start and every
 * minute: it warms the label cache, removes endpoints whose containers are gone, and collects
 * what no endpoint uses any more (runtime dirs, status files, ephemeral state).
 */
function startRepairs(settings: Settings, log: Logger, flow: EndpointFlow, closers: Closers): { events: EventsWatcher; repair: RepairPass } {
  const { binder, nodes, metrics, tasks } = flow;
  const repair = new RepairPass(flow, log);
  const events = new EventsWatcher(flow.docker.openEvents, async (e: DockerEvent) => {
    const stopping = stoppingContainer(e);
    if (stopping) tasks.run('drain', () => nodes.stopping(stopping), { container: shortId(stopping) });
    await binder.onEvent(e);
  }, log, {
    minBackoffMs: settings.eventsMinBackoffMs,
    maxBackoffMs: settings.eventsMaxBackoffMs,
    queueSize: settings.eventsQueueSize,
  }, {
    connected: () => {
      tasks.run('repair', () => repair.run());
      // Each (re)connect may find another engine (dockerd upgraded and restarted meanwhile).
      tasks.run('engine version', () => checkEngine(flow, log));
    },
    disconnected: () => metrics.streamReconnecting(),
    dropped: () => metrics.eventDropped(),
    handled: (e, ok) => metrics.eventHandled(e, ok),
  });
  events.start();
  closers.push('docker events', () => events.stop());
  const again = (): void => void (events.state().connected && tasks.run('repair', () => repair.run()));
  // A second pass soon after start: endpoints joined just before a restart are judged only once
  // their containers had time to list them (binder.ts JOINED_BEFORE_START_MS).
  const settle = setTimeout(again, SETTLE_REPAIR_MS).unref();
  const every = setInterval(again, REPAIR_INTERVAL_MS).unref();
  closers.push('repair timers', () => {
    clearTimeout(settle);
    clearInterval(every);
  });
  return { events, repair };
}

/**
 * Operations (always a unix socket in the data directory, TCP only when asked for, with its
 * token), then the plugin socket last: Docker's first call finds everything ready.
 */
async function listen(settings: Settings, log: Logger, flow: EndpointFlow, repairs: { events: EventsWatcher; repair: RepairPass }, closers: Closers): Promise<FastifyInstance> {
  const { store, nodes, metrics } = flow;
  const opsSources = {
    metrics,
    endpoints: () => [...store.endpoints.values()].map((ep) => endpointView(ep, nodes.operInfo(ep))),
    watcher: () => repairs.events.state(),
    recovered: () => repairs.repair.done,
  };
  const opsSocket = join(settings.dataDir, OPS_SOCKET);
  await serveOn(buildOpsServer(opsSources), { path: opsSocket }, 'operations socket', closers);
  if (settings.metricsListen) {
    const at = settings.metricsListen.lastIndexOf(':');
    // TCP reaches beyond root: every route but /healthz needs the token (its file, never its value, is logged).
    const token = await loadOpsToken(settings.dataDir);
    const where = tokenWhere(token.file, settings.hostDockerRun !== undefined);
    if (token.narrowed) log.warn({ tokenFile: token.file }, 'the operations token file was readable by others: its mode is now 0600');
    log.info({ tokenFile: token.file, created: token.created }, `the TCP operations listener needs "Authorization: Bearer <token>" on every route but /healthz; the token is in ${where}`);
    await serveOn(buildOpsServer(opsSources, { auth: { token: token.token, where } }), {
      host: settings.metricsListen.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(settings.metricsListen.slice(at + 1)),
    }, 'operations TCP listener', closers);
  }
  const server = buildServer(flow.driver, log, (url, status, seconds) => metrics.request(url, status, seconds));
  await serveOn(server, { path: settings.socketPath }, 'plugin socket', closers);
  log.info({ socket: settings.socketPath, ops: opsSocket, metricsListen: settings.metricsListen, dataDir: settings.dataDir, networks: store.networks.size, endpoints: store.endpoints.size }, 'tslink serving');
  return server;
}

/** A Fastify instance listening (a unix socket: claimed first, root's only after), closed by `closers`. */
async function serveOn(app: FastifyInstance, where: { path: string } | { host: string; port: number }, what: string, closers: Closers): Promise<void> {
  if ('path' in where) await claimSocketPath(where.path);
  await app.listen(where);
  closers.push(what, () => app.close());
  if ('path' in where) await restrictSocket(where.path);
}
