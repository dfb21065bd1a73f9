import type { ChildProcess } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { isFreshIdentity, logIn } from './login.js';
import { join } from 'node:path';
import type { Logger } from '../util/log.js';
import { scrubSecrets } from '../util/log.js';
import { RestartPolicy } from './restart-policy.js';
import { DEFAULT_SUPERVISOR_OPTIONS, LOCK_RETRY_MS, SOCKET_POLL_MS, type NodePaths, type SupervisorDeps, type SupervisorOptions } from './supervisor-options.js';

export type { NodePaths, SupervisorDeps };
import { RotatingLog } from './rotating-log.js';
import type { TailscaleStatus } from './tailscale-cli.js';
import type { NodeSpec } from './node-config.js';
import { applyServe, drainService, servingProblem } from './serving.js';
import { StatusBook } from './status-book.js';
import { waitUntil } from '../util/wait-until.js';
import { socketIsLive } from '../util/socket-probe.js';
import { recordDaemon, stopProcesses } from './daemon-ownership.js';
import { StateDirHeld, StateDirLock } from '../util/file-lock.js';
import { shortId } from '../util/short-id.js';
import type { NodeState, NodeStatus } from './status.js';

/**
 * One endpoint's tailscaled: started in the container's network namespace, configured through
 * the CLI, restarted with backoff when it dies, drained and stopped when the container leaves.
 */
export class NodeSupervisor {
  private child?: ChildProcess;
  private startedAt = 0;
  private stopping = false;
  private timer?: NodeJS.Timeout;
  private inflight?: Promise<void>;
  private pollTimer?: NodeJS.Timeout;
  private readonly policy: RestartPolicy;
  private readonly opts: SupervisorOptions;
  private readonly out: RotatingLog;
  private tail = '';
  private exited?: Promise<void>;
  private drained = false;
  private forceReauth = false;
  /** A node found running before a plugin restart: its daemon may resume from its state without `up`. */
  private resume = false;
  private staleService?: string;
  private readonly log: Logger;
  private readonly book: StatusBook;
  private readonly lock: StateDirLock;

  constructor(
    readonly spec: NodeSpec,
    readonly paths: NodePaths,
    private readonly deps: SupervisorDeps,
  ) {
    this.opts = { ...DEFAULT_SUPERVISOR_OPTIONS, ...deps.options };
    this.policy = new RestartPolicy(this.opts.restart);
    this.out = new RotatingLog(paths.logFile);
    this.lock = new StateDirLock(join(paths.stateDir, 'tslink.lock'));
    this.log = deps.log.child({ endpoint: shortId(spec.endpointId), container: shortId(spec.containerId), network: shortId(spec.networkId), hostname: spec.hostname });
    this.book = new StatusBook(spec, deps.tailscaledVersion, deps.onStatus, this.log);
  }

  /** Begins supervision; `delayMs` spreads out mass starts; `forceReauth` logs in anew (another control server). */
  start(delayMs = 0, opts: { forceReauth?: boolean; staleService?: string; resume?: boolean } = {}): void {
    this.forceReauth = opts.forceReauth ?? false;
    this.staleService = opts.staleService;
    this.resume = opts.resume ?? false;
    this.schedule(delayMs, () => this.launch());
  }

  /** Resolves once no launch is under way (one that meets `stopping` ends at its next step). */
  async settled(): Promise<void> {
    while (this.inflight) await this.inflight;
  }

  /** A copy of the node's status: only the supervisor changes it. */
  get status(): NodeStatus {
    return this.book.current;
  }

  /** A node that never ran (it waited for a hostname) is done: it only reports that. */
  markStopped(): void {
    if (!this.stopping) {
      this.stopping = true;
      this.set('stopped');
    }
  }

  /** Deletes the node's state directory (its identity): for ephemeral nodes, after stop and logout. */
  async removeState(): Promise<void> {
    await rm(this.paths.stateDir, { recursive: true, force: true });
  }

  /** Marks the node as waiting for something outside it (a held hostname). */
  wait(reason: string, heldBy: string): void {
    this.set('waiting-for-container', { lastError: reason, heldBy });
  }

  private set(state: NodeState, extra: Partial<NodeStatus> = {}): void {
    this.book.set(state, extra);
  }

  /** Runs `fn` after `ms`; `stop` waits for a run under way (it finds `stopping` and ends early). */
  private schedule(ms: number, fn: () => Promise<void>): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      const run = fn().catch((e: Error) => this.log.error({ err: e.message }, 'node supervisor error'));
      this.inflight = run.finally(() => {
        if (this.inflight === run) this.inflight = undefined;
      });
    }, ms);
  }

  private async launch(): Promise<void> {
    if (this.stopping) return;
    this.set('starting');
    await mkdir(this.paths.stateDir, { recursive: true, mode: 0o700 });
    await mkdir(this.paths.runDir, { recursive: true, mode: 0o700 });
    try {
      await this.lock.acquire();
    } catch (e) {
      if (!(e instanceof StateDirHeld)) throw e;
      if (this.stopping) return;
      this.set('failed', { lastError: `tslink: ${e.message}; retrying in ${LOCK_RETRY_MS / 1000} s`, nextAttemptAt: new Date(Date.now() + LOCK_RETRY_MS).toISOString() });
      this.schedule(LOCK_RETRY_MS, () => this.launch());
      return;
    }
    if (this.stopping) return this.lock.release();
    // A daemon left on this state by an earlier plugin process would share the node's key.
    const leftovers = this.deps.leftovers?.take(this.paths.stateDir) ?? [];
    if (leftovers.length) {
      this.log.warn({ pids: leftovers }, 'stopping a tailscaled left by an earlier plugin process');
      await stopProcesses(leftovers, this.opts.stopGraceMs);
    }
    await rm(this.paths.socket, { force: true });
    await this.deps.prepareNamespace?.().catch((e: Error) =>
      this.log.warn({ err: e.message }, 'could not prepare the container\'s namespace (tailnet ranges unreachable outside tailscale0, forwarding for routes)'),
    );
    // stop() may have run during any await above; it found no daemon to stop, so none may start
    // now (a daemon started here would outlive its endpoint).
    if (this.stopping) return this.lock.release();
    const fresh = await isFreshIdentity(this.paths.stateDir);
    if (this.stopping) return this.lock.release();
    const child = this.spawn();
    this.log.debug({ pid: child.pid }, 'tailscaled spawned');
    // The proof a later tslink needs before it may stop this daemon as a leftover.
    if (child.pid) await recordDaemon(this.paths.stateDir, child.pid).catch((e: Error) => this.log.warn({ err: e.message }, 'could not record the daemon\'s pid'));
    if (!(await this.waitForSocket(child))) {
      if (this.child === child && !this.stopping) child.kill('SIGKILL');
      return;
    }
    await this.configure(child, fresh);
  }

  /** tailscaled on the node's state, its output drained always (a daemon blocked on a full pipe stops working). */
  private spawn(): ChildProcess {
    const child = this.deps.spawnDaemon([
      `--statedir=${this.paths.stateDir}`,
      `--socket=${this.paths.socket}`,
      '--tun=tailscale0',
      `--port=${this.spec.wireguardPort}`,
    ]);
    this.child = child;
    this.startedAt = Date.now();
    const sink = (b: Buffer): void => {
      this.out.write(b);
      this.tail = (this.tail + b.toString('utf8')).slice(-4096);
    };
    child.stdout?.on('data', sink);
    child.stderr?.on('data', sink);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        if (this.child === child) this.child = undefined;
        this.onExit(code, signal);
        resolve();
      });
      child.once('error', (e) => {
        this.tail += `\n${e.message}`;
      });
    });
    return child;
  }

  private async waitForSocket(child: ChildProcess): Promise<boolean> {
    const gone = (): boolean => child.exitCode !== null || child.signalCode !== null || this.stopping;
    const live = await waitUntil(async () => gone() || (await socketIsLive(this.paths.socket)), { timeoutMs: this.opts.socketWaitMs, everyMs: SOCKET_POLL_MS });
    if (live && !gone()) return true;
    if (!live) this.tail += `\ntailscaled did not open its socket within ${this.opts.socketWaitMs} ms`;
    return false;
  }

  private async configure(child: ChildProcess, fresh: boolean): Promise<void> {
    try {
      const o = await logIn({
        spec: this.spec, stateDir: this.paths.stateDir, cli: this.deps.cli, authKey: this.deps.authKey,
        upTimeoutSec: this.opts.upTimeoutSec, forceReauth: this.forceReauth, resume: this.resume, fresh,
      });
      if (o.kind === 'stopped') {
        this.set(o.state, { lastError: o.lastError });
        return;
      }
      this.log.debug({ backend: o.status.BackendState }, o.kind === 'up' ? 'tailscale up done' : 'node resumed from its state: settings unchanged, no tailscale up');
      this.forceReauth = false; // logged in (to the new server): later restarts need no new login
      this.book.note(o.status);
      await this.finishStart(o.status);
    } catch (e) {
      if (this.stopping || this.child !== child) return;
      this.tail += `\n${(e as Error).message}`;
      this.log.warn({ err: scrubSecrets((e as Error).message) }, 'node configuration failed; restarting tailscaled');
      child.kill('SIGTERM');
    }
  }

  private async finishStart(status: TailscaleStatus): Promise<void> {
    if (this.spec.serve.length || this.spec.service || this.staleService) {
      const problem = servingProblem(this.spec, status);
      if (problem) return this.set('failed', { lastError: problem });
      this.set('serving-pending');
      await applyServe(this.deps.cli, this.spec, this.staleService);
      this.staleService = undefined;
    }
    this.set('running', { lastError: undefined });
    // A crash restart of this very node may resume from its state too.
    this.resume = true;
    this.pollLater();
  }

  private pollLater(): void {
    clearTimeout(this.pollTimer);
    this.pollTimer = setTimeout(() => void this.poll(), this.opts.pollMs);
    this.pollTimer.unref();
  }

  /** Cheap steady-state check: one status call per poll interval per node. */
  private async poll(): Promise<void> {
    if (this.stopping || !this.child) return;
    try {
      const st = await this.deps.cli.status();
      this.book.note(st);
      if (st.BackendState === 'NeedsLogin') this.set('logged-out', { lastError: 'the control server logged this node out (key expired or node removed); restart the container to log in again' });
      else if (st.BackendState === 'Running' && this.book.current.state !== 'running') this.set('running', { lastError: undefined });
      else this.book.tell();
    } catch (e) {
      this.log.debug({ err: (e as Error).message }, 'status poll failed');
    }
    this.pollLater();
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    clearTimeout(this.pollTimer);
    if (this.stopping) return;
    const how = signal ? `signal ${signal}` : `code ${code}`;
    const lastOutput = scrubSecrets(this.tail.trim().split('\n').slice(-5).join(' | '));
    const d = this.policy.onExit(this.startedAt, Date.now());
    this.book.restarted();
    const next = new Date(Date.now() + d.delayMs).toISOString();
    if (d.kind === 'crash-loop') {
      this.set('failed', { lastError: `tailscaled crashed ${d.crashes} times within ${this.opts.restart.loopWindowMs / 1000} s (last exit ${how}): ${lastOutput}; next try after a cooldown`, nextAttemptAt: next, crashLoop: true });
    } else {
      this.set('retrying', { lastError: `tailscaled exited with ${how}: ${lastOutput}`, nextAttemptAt: next });
    }
    this.schedule(d.delayMs, () => this.launch());
  }

  /** Tells control this Service backend is going away, then waits (bounded) for it to notice. */
  async drain(): Promise<void> {
    if (!this.spec.service || !this.child || this.drained) return;
    this.drained = true;
    await drainService(this.deps.cli, this.spec.service, this.opts.drainWaitMs, this.log);
  }

  /** Drains, logs out when asked, stops tailscaled (TERM, then KILL after a bound), cleans up. */
  async stop(opts: { logout: boolean; drain?: boolean }): Promise<void> {
    if (this.stopping) return;
    if (opts.drain !== false && !this.drained) await this.drain().catch(() => undefined);
    this.stopping = true;
    clearTimeout(this.timer);
    clearTimeout(this.pollTimer);
    if (opts.logout && this.child) {
      const r = await this.deps.cli.call(['logout'], 10_000).catch((e: Error) => ({ code: 1, stdout: '', stderr: e.message }));
      if (r.code !== 0) this.log.warn({ err: scrubSecrets(r.stderr || r.stdout) }, 'logout failed');
      else this.log.info({}, 'node logged out');
    }
    const child = this.child;
    if (child) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), this.opts.stopGraceMs);
      await this.exited;
      clearTimeout(killer);
    }
    await rm(this.paths.runDir, { recursive: true, force: true });
    await this.lock.release();
    await this.out.close();
    this.set('stopped');
  }
}
