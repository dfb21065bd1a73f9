import { Leftovers, stopProcesses } from './daemon-ownership.js';
import { shortId } from '../util/short-id.js';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, rmdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isAbandonedTemp, writeFileAtomic } from '../util/atomic-file.js';
import { within } from '../util/timeout.js';
import { childEnv, type Runner } from '../util/exec.js';
import { localSandboxPath } from '../host/netns.js';
import { prepareNamespace } from '../host/container-routes.js';
import { parseIpv4 } from '../host/ipv4.js';
import { parseIfName } from '../host/host-spec.js';
import { overriddenTags } from '../config/labels.js';
import { overriddenRouting } from '../config/routing.js';
import type { Settings } from '../config/settings.js';
import type { Logger } from '../util/log.js';
import type { EndpointRecord, NetworkRecord, StateStore } from '../state/store.js';
import type { EndpointSession } from '../state/endpoint-sessions.js';
import { IdentityLocks } from './identity-locks.js';
import { IDENTITIES, LEGACY_IDENTITIES, identityDir, identityScope } from './identity-dir.js';
import { StatusFiles, type EndpointReport, type NodeStatus } from './status.js';
import { NodeSupervisor } from './supervisor.js';
import { DEFAULT_SUPERVISOR_OPTIONS, type SupervisorOptions } from './supervisor-options.js';
import { nodeSpec } from './node-config.js';
import { TailscaleCli } from './tailscale-cli.js';
import type { TailscaleBinaries } from './tailscale-binaries.js';

const MARKER = 'tslink-node.json';
/** How long a shutdown waits for node starts under way to notice it. */
const SHUTDOWN_SETTLE_MS = 5_000;

interface Marker {
  ephemeral: boolean;
  network: string;
  endpoint: string;
  updatedAt: string;
  /** The control server the node last logged in to ('' for Tailscale's own). */
  loginServer?: string;
  /** The Tailscale Service the node last backed. */
  service?: string;
}

/** Owns every endpoint's node: start on ready, drain on kill, stop on leave, hostname ownership. */
export class NodeManager {
  private readonly sups = new Map<string, NodeSupervisor>();
  readonly statuses = new Map<string, NodeStatus>();
  private readonly locks = new IdentityLocks();
  private readonly files: StatusFiles;

  constructor(
    private readonly store: StateStore,
    private readonly settings: Settings,
    private readonly run: Runner,
    private readonly binaries: TailscaleBinaries | Error,
    private readonly log: Logger,
    private readonly options: Partial<SupervisorOptions> = {},
    /** Told of every change of a status's state, restarts, crash loop, addresses or MagicDNS suffix (metrics, names). */
    private readonly statusChanged: (prev: NodeStatus | undefined, next: NodeStatus) => void = () => undefined,
    /** tailscaled processes an earlier plugin process left (data-dir-owner.ts found them at start). */
    private readonly leftovers: Leftovers = Leftovers.none(),
  ) {
    this.files = new StatusFiles(settings.dataDir);
  }

  /**
   * An identity tslink before 0.3 kept by hostname alone is moved to the first network that
   * starts a node of that hostname, so no node changes its address on upgrade. A daemon an
   * earlier plugin process left on it is stopped first.
   */
  private async adoptLegacy(dir: string, net: NetworkRecord, hostname: string): Promise<void> {
    const legacy = join(this.settings.dataDir, LEGACY_IDENTITIES, hostname);
    if (existsSync(dir) || !existsSync(legacy)) return;
    const left = this.leftovers.take(legacy);
    if (left.length) await stopProcesses(left, this.options.stopGraceMs ?? DEFAULT_SUPERVISOR_OPTIONS.stopGraceMs);
    await mkdir(dirname(dir), { recursive: true, mode: 0o700 });
    await rename(legacy, dir).then(
      () => this.log.info({ hostname, network: identityScope(net), to: dir }, 'node identity kept by hostname alone (tslink before 0.3) now belongs to this network'),
      (e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e; // another network took it a moment ago
      },
    );
  }

  private readonly written = new Map<string, string>();

  /** Keeps the latest status; the file is rewritten only when it changed (polls mostly do not). */
  private record(s: NodeStatus): void {
    const prev = this.statuses.get(s.endpoint);
    this.statuses.set(s.endpoint, s);
    const addressed = (x?: NodeStatus): string => `${x?.tailscaleIPs.join(',')}|${x?.magicDnsSuffix}`;
    if (prev?.state !== s.state || prev.restarts !== s.restarts || prev.crashLoop !== s.crashLoop || addressed(prev) !== addressed(s)) this.statusChanged(prev, s);
    const text = JSON.stringify({ ...s, since: undefined });
    if (this.written.get(s.endpoint) === text) return;
    this.written.set(s.endpoint, text);
    const write = this.files.write(s).catch((e: Error) => {
      // Not written: the next status (a poll at the latest) writes it again.
      if (this.written.get(s.endpoint) === text) this.written.delete(s.endpoint);
      this.log.error({ endpoint: shortId(s.endpoint), err: e.message }, 'status file write failed');
    });
    this.writes.add(write);
    void write.finally(() => this.writes.delete(write));
  }

  /** Status file writes under way (shutdown waits for them). */
  private readonly writes = new Set<Promise<void>>();

  /**
   * An endpoint is bound and its namespace exists: bring its node up, within the endpoint's
   * session. A start decided before a Leave (a repair pass, a jittered recovery) finds the
   * session ended and starts nothing, or the daemon would outlive its endpoint.
   */
  async ready(ep: EndpointRecord, net: NetworkRecord, session: EndpointSession, opts: { jitterMs?: number } = {}): Promise<void> {
    if (this.sups.has(ep.id) || !session.active || !this.store.endpoints.get(ep.id)?.joinedAt) return;
    const spec = nodeSpec(ep, net, net.config.authKey ?? this.settings.authKey);
    if (!spec) return;
    const dropped = ep.config ? overriddenTags(net.config, ep.config) : [];
    if (dropped.length) {
      this.log.warn({ endpoint: shortId(ep.id), container: ep.containerName, dropped, tags: spec.tags }, 'the network sets the tags: the container\'s own tslink.tags are not used');
    }
    const routing = ep.config ? overriddenRouting(net.config, ep.config) : [];
    if (routing.length) this.log.warn({ endpoint: shortId(ep.id), container: ep.containerName, labels: routing }, 'the network sets these: the container\'s own labels are not used');
    const base: NodeStatus = {
      endpoint: ep.id, network: net.id, container: ep.containerId, containerName: ep.containerName,
      state: 'failed', since: new Date().toISOString(), hostname: spec.hostname, tailscaleIPs: [], restarts: 0, crashLoop: false,
    };
    if (this.binaries instanceof Error) {
      this.record({ ...base, lastError: `tslink: cannot start Tailscale: ${this.binaries.message}` });
      return;
    }
    const bins = this.binaries;
    const stateDir = identityDir(this.settings.dataDir, net, spec.hostname);
    const netns = localSandboxPath(spec.sandboxKey, this.settings.hostDockerRun);
    const runDir = join(this.settings.dataDir, 'run', shortId(ep.id));
    const sup = new NodeSupervisor(
      spec,
      { stateDir, runDir, socket: join(runDir, 'tailscaled.sock'), logFile: join(this.settings.dataDir, 'logs', `${shortId(ep.id)}-tailscaled.log`) },
      {
        spawnDaemon: (args) =>
          // setpriv: the daemon gets SIGTERM when this plugin process dies (kill -9 included), so
          // no tailscaled outlives its owner and keeps a removed container's namespace alive.
          // TS_LOGS_DIR: each node's log ID and buffers in its own identity; without it every node
          // shared the host's /var/lib/tailscale (one log ID for all, a host Tailscale's files).
          spawn('setpriv', ['--pdeathsig', 'TERM', '--', 'nsenter', `--net=${netns}`, bins.tailscaled, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv({ ...this.settings.tailscaledEnv, TS_LOGS_DIR: stateDir }) }),
        prepareNamespace: () =>
          prepareNamespace(this.run, netns, { address: parseIpv4(ep.address), hostIf: parseIfName(ep.hostIf) }, spec.advertiseExitNode || spec.advertiseRoutes.length > 0, session.signal, this.log.child({ endpoint: shortId(ep.id) })),
        leftovers: this.leftovers,
        cli: new TailscaleCli(this.run, bins.tailscale, join(runDir, 'tailscaled.sock'), childEnv()),
        authKey: () => net.config.authKey ?? this.settings.authKey,
        onStatus: (s) => this.record(s),
        log: this.log,
        tailscaledVersion: bins.version,
        options: this.options,
      },
    );
    this.sups.set(ep.id, sup);
    const holder = this.locks.claim(stateDir, ep.id);
    if (holder !== ep.id) {
      const h = this.store.endpoints.get(holder);
      const who = h?.containerName ? `container ${h.containerName} (${shortId(h.containerId ?? '')})` : `endpoint ${shortId(holder)}`;
      sup.wait(`tslink: hostname ${spec.hostname} is in use by ${who} on this network on this host; this container waits until it leaves (give it another tslink.hostname to run both)`, who);
      return;
    }
    await this.adoptLegacy(stateDir, net, spec.hostname);
    if (!session.active || this.sups.get(ep.id) !== sup) return; // left while the identity moved
    await this.begin(sup, opts.jitterMs ?? 0, session.recovered);
  }

  /** `resume`: the endpoint's node ran before this plugin process started (a recovery). */
  private async begin(sup: NodeSupervisor, delayMs: number, resume = false): Promise<void> {
    const dir = sup.paths.stateDir;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // The marker follows the network that uses the hostname last, so a later GC never mistakes
    // a persistent node for an ephemeral one (or the other way round).
    // A node that moves to another control server must log in anew: `up` refuses the change
    // without --force-reauth, even with --reset.
    const old = await readFile(join(dir, MARKER), 'utf8').then((t) => JSON.parse(t) as Marker, () => undefined);
    const loginServer = sup.spec.loginServer ?? '';
    const moved = old !== undefined && old.loginServer !== undefined && old.loginServer !== loginServer;
    const marker: Marker = { ephemeral: sup.spec.ephemeral, network: sup.spec.networkId, endpoint: sup.spec.endpointId, updatedAt: new Date().toISOString(), loginServer, service: sup.spec.service };
    // Lost in a power cut, the marker only makes the GC keep the state (no marker: not ours).
    await writeFileAtomic(join(dir, MARKER), JSON.stringify(marker), 0o600, { durable: false });
    if (moved) this.log.warn({ endpoint: shortId(sup.spec.endpointId), hostname: sup.spec.hostname, from: old.loginServer || 'Tailscale', to: loginServer || 'Tailscale' }, 'the node moves to another control server: it logs in again');
    sup.start(delayMs, { forceReauth: moved, staleService: old?.service !== sup.spec.service ? old?.service : undefined, resume });
  }

  /** Docker is stopping the container (kill/die): drain its Service backends first. */
  async stopping(containerId: string): Promise<void> {
    await Promise.all([...this.sups.values()].filter((s) => s.spec.containerId === containerId).map((s) => s.drain()));
  }

  /** The endpoint leaves: drain, log out if ephemeral, stop, hand the hostname to the next in line. */
  async leave(endpointId: string): Promise<void> {
    const sup = this.sups.get(endpointId);
    if (!sup) return;
    this.sups.delete(endpointId);
    const waiting = this.locks.holder(sup.paths.stateDir) !== endpointId;
    if (!waiting) await sup.stop({ logout: sup.spec.ephemeral });
    else sup.markStopped();
    const next = this.locks.release(sup.paths.stateDir, endpointId);
    if (!waiting && sup.spec.ephemeral) {
      await sup.removeState();
      this.log.info({ endpoint: shortId(endpointId), hostname: sup.spec.hostname }, 'ephemeral node logged out and its state deleted');
    }
    this.record({ ...sup.status, state: 'stopped' });
    const nextSup = next ? this.sups.get(next) : undefined;
    if (nextSup) await this.begin(nextSup, 0);
  }

  async forget(endpointId: string): Promise<void> {
    await this.leave(endpointId);
    this.statuses.delete(endpointId);
    this.written.delete(endpointId);
    await this.files.remove(endpointId);
  }

  /** The node's part of EndpointOperInfo: its status, or why there is none yet. */
  operInfo(ep: EndpointRecord): EndpointReport {
    const s = this.statuses.get(ep.id);
    if (s) return { ...s };
    if (ep.configError) return { state: 'failed', lastError: ep.configError };
    return { state: 'waiting-for-container' };
  }

  /** Records a configuration error found when the event path bound the endpoint. */
  invalid(ep: EndpointRecord): void {
    this.record({
      endpoint: ep.id, network: ep.networkId, container: ep.containerId, containerName: ep.containerName,
      state: 'failed', since: new Date().toISOString(), tailscaleIPs: [], restarts: 0, crashLoop: false, lastError: ep.configError,
    });
  }

  /** Plugin shutdown: daemons stop, nodes keep their login and state, and come back on restart. */
  async shutdown(): Promise<void> {
    const sups = [...this.sups.values()];
    await Promise.all(sups.map((s) => s.stop({ logout: false, drain: false })));
    // Launches under way end at their next step once stopped; a CLI call they wait on is bounded.
    if (!(await within(SHUTDOWN_SETTLE_MS, Promise.all(sups.map((s) => s.settled()))))) this.log.warn({}, 'node starts still under way at shutdown');
    await Promise.all(this.writes);
  }

  /**
   * Removes what no endpoint uses any more: runtime directories (sockets), status files, and
   * the state of ephemeral nodes. A persistent hostname's state is never deleted. An ephemeral
   * node whose logout was missed (the plugin died first) needs none: Tailscale removes offline
   * ephemeral nodes by itself.
   */
  async collectGarbage(): Promise<string[]> {
    const eps = [...this.store.endpoints.values()];
    const liveShort = new Set(eps.map((e) => shortId(e.id)));
    const liveIds = new Set(eps.map((e) => e.id));
    const liveDirs = new Set([
      ...eps.flatMap((e) => {
        const net = this.store.networks.get(e.networkId);
        return e.config && net ? [identityDir(this.settings.dataDir, net, e.config.hostname)] : [];
      }),
      ...[...this.sups.values()].map((s) => s.paths.stateDir),
    ]);
    const liveHostnames = new Set(eps.flatMap((e) => (e.config ? [e.config.hostname] : [])));
    // A daemon left on a node no endpoint uses (its container was removed while no plugin ran)
    // keeps that container's namespace alive: stop it before its state may go.
    const strays = this.leftovers.takeAllBut(new Set([...liveDirs, ...[...liveHostnames].map((h) => join(this.settings.dataDir, LEGACY_IDENTITIES, h))]));
    if (strays.length) {
      this.log.warn({ pids: strays }, 'stopping tailscaled left by an earlier plugin process for nodes no endpoint uses');
      await stopProcesses(strays, this.options.stopGraceMs ?? DEFAULT_SUPERVISOR_OPTIONS.stopGraceMs);
    }
    const removed: string[] = [];
    const sweep = async (dir: string, keep: (name: string) => boolean, shouldGo: (path: string) => Promise<boolean> = async () => true): Promise<void> => {
      for (const name of await readdir(join(this.settings.dataDir, dir)).catch(() => [] as string[])) {
        const path = join(this.settings.dataDir, dir, name);
        // A write's temp file is garbage only when no write of this process has it: one left by a
        // plugin killed mid-write (kill -9) stayed for good (seen in restart.e2e).
        if (name.startsWith('.') && !isAbandonedTemp(path)) continue;
        if (keep(name) || !(await shouldGo(path))) continue;
        await rm(path, { recursive: true, force: true });
        removed.push(`${dir}/${name}`);
      }
    };
    await sweep('run', (n) => liveShort.has(n));
    await sweep('status', (n) => liveIds.has(n.replace(/\.json$/, '')) || this.statuses.has(n.replace(/\.json$/, '')));
    const ephemeral = async (path: string): Promise<boolean> => {
      try {
        return (JSON.parse(await readFile(join(path, MARKER), 'utf8')) as Marker).ephemeral;
      } catch {
        return false; // no marker: never ours to delete
      }
    };
    for (const scope of await readdir(join(this.settings.dataDir, IDENTITIES)).catch(() => [] as string[])) {
      const dir = join(IDENTITIES, scope);
      await sweep(dir, (h) => liveDirs.has(join(this.settings.dataDir, dir, h)), ephemeral);
      await rmdir(join(this.settings.dataDir, dir)).catch(() => undefined); // only when empty
    }
    await sweep(LEGACY_IDENTITIES, (h) => liveHostnames.has(h), ephemeral);
    return removed;
  }
}
