import type { RunResult, Runner } from '../util/exec.js';
import type { ServeRule } from '../config/serve.js';

/** What `tailscale up` is told: always the full intended set (with --reset), never the key itself. */
export interface UpSettings {
  hostname: string;
  tags: readonly string[];
  loginServer?: string;
  /** The key comes on the CLI's stdin, never in argv, the environment or a file. */
  keyOnStdin?: boolean;
  timeoutSec: number;
  /** Log in anew (the node moves to another control server). */
  forceReauth?: boolean;
  /** Routing (NodeSpec); absent means off. */
  exitNode?: string;
  exitNodeAllowLanAccess?: boolean;
  advertiseExitNode?: boolean;
  advertiseRoutes?: readonly string[];
  acceptRoutes?: boolean;
}

/**
 * Routing flags with explicit values even when off: --reset would clear them anyway, but a
 * command that names every setting shows what the node was told (and the recorded last `up`
 * compares them). Spellings of Tailscale 1.102 (cmd/tailscale/cli/up.go:109-120): bools as
 * `--flag=false` (Go's flag package takes a bool's value only after `=`); an empty
 * --exit-node or --advertise-routes means none. --exit-node-allow-lan-access=true without an
 * exit node is an error (up.go:305-307), so it goes only with one.
 */
export function routingArgs(s: Pick<UpSettings, 'exitNode' | 'exitNodeAllowLanAccess' | 'advertiseExitNode' | 'advertiseRoutes' | 'acceptRoutes'>): string[] {
  const args = [
    `--accept-routes=${s.acceptRoutes === true}`,
    `--advertise-exit-node=${s.advertiseExitNode === true}`,
    `--advertise-routes=${(s.advertiseRoutes ?? []).join(',')}`,
    `--exit-node=${s.exitNode ?? ''}`,
  ];
  if (s.exitNode) args.push(`--exit-node-allow-lan-access=${s.exitNodeAllowLanAccess === true}`);
  return args;
}

/** The routing flags a node without routing gets: what an `up` recorded before issue 26 meant. */
export const ROUTING_OFF: readonly string[] = routingArgs({});

export function upArgs(s: UpSettings): string[] {
  const args = ['up', '--reset', `--hostname=${s.hostname}`, '--accept-dns=false', `--timeout=${s.timeoutSec}s`];
  // An empty --advertise-tags clears tags, which is what a tagless node wants after --reset.
  args.push(`--advertise-tags=${s.tags.join(',')}`);
  args.push(...routingArgs(s));
  if (s.loginServer) args.push(`--login-server=${s.loginServer}`);
  if (s.forceReauth) args.push('--force-reauth');
  if (s.keyOnStdin) args.push('--auth-key=file:/dev/stdin');
  return args;
}

const targetUrl = (r: ServeRule): string => {
  const hostPort = `${r.target.host}:${r.target.port}`;
  if (r.proto === 'http' || r.proto === 'https') return `http://${hostPort}`;
  return `tcp://${hostPort}`;
};

/** One `tailscale serve` command line per rule, for the node itself or for a Service. */
export function serveArgs(r: ServeRule, service?: string): string[] {
  const args = ['serve', '--bg', '--yes'];
  if (service) args.push(`--service=${service}`);
  if (r.proto === 'tun') {
    args.push('--tun');
    return args;
  }
  args.push(`--${r.proto}=${r.port}`);
  if (r.path) args.push(`--set-path=${r.path}`);
  if (r.proxyProtocol) args.push(`--proxy-protocol=${r.proxyProtocol}`);
  if (r.acceptAppCaps?.length) args.push(`--accept-app-caps=${r.acceptAppCaps.join(',')}`);
  args.push(targetUrl(r));
  return args;
}

/** ipn.State names as `status --json` prints them. */
export type BackendState = 'NoState' | 'NeedsLogin' | 'NeedsMachineAuth' | 'Stopped' | 'Starting' | 'Running' | 'InUseOtherUser';

export interface TailscaleStatus {
  BackendState: BackendState;
  /** True once the identity has a node key: a login. A logged-in node answers NoState until its first netmap. */
  HaveNodeKey?: boolean;
  AuthURL?: string;
  TailscaleIPs?: string[] | null;
  Version?: string;
  Self?: { HostName?: string; DNSName?: string; TailscaleIPs?: string[] | null; Online?: boolean; Capabilities?: string[] | null; CapMap?: Record<string, unknown> | null };
  Health?: string[] | null;
  CurrentTailnet?: { Name?: string; MagicDNSSuffix?: string; MagicDNSEnabled?: boolean } | null;
  /** The netmap's peers by node key; `up` resolves an exit node's name only against them (ipn/prefs.go:912-915). */
  Peer?: Record<string, TailscalePeer> | null;
}

/** ipnstate.PeerStatus, the fields tslink reads. */
export interface TailscalePeer {
  DNSName?: string;
  TailscaleIPs?: string[] | null;
  ExitNodeOption?: boolean;
  Active?: boolean;
  CurAddr?: string;
}

export class CliError extends Error {
  constructor(
    readonly what: string,
    readonly result: RunResult,
  ) {
    // The CLI's own words are the most useful part of the error: keep them (key-scrubbed by Runner users).
    super(`tailscale ${what} failed (exit ${result.code}): ${(result.stderr || result.stdout).trim().slice(0, 2000)}`);
  }
}

const LINE_TO_PIPE = 'IFS= read -r line; printf "%s\\n" "$line" | "$0" "$@"';

/** The `tailscale` CLI against one daemon's socket: the only way tslink configures a node. */
export class TailscaleCli {
  constructor(
    private readonly run: Runner,
    private readonly bin: string,
    private readonly socket: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /**
   * `input` (one line) goes to the CLI's stdin: the only way a key reaches it
   * (`--auth-key=file:/dev/stdin`). Node gives a child a socket, not a pipe, as stdin, and opening
   * /dev/stdin on a socket fails (ENXIO), so a shell moves the line into a real pipe; the line
   * stays in an unexported shell variable, never in an argv or environment.
   */
  async call(args: readonly string[], timeoutMs = 30_000, input?: string): Promise<RunResult> {
    const argv = [`--socket=${this.socket}`, ...args];
    if (input === undefined) return this.run(this.bin, argv, { timeoutMs, env: this.env });
    return this.run('sh', ['-c', LINE_TO_PIPE, this.bin, ...argv], { timeoutMs, env: this.env, input });
  }

  async must(what: string, args: readonly string[], timeoutMs?: number): Promise<RunResult> {
    const r = await this.call(args, timeoutMs);
    if (r.code !== 0) throw new CliError(what, r);
    return r;
  }

  async status(): Promise<TailscaleStatus> {
    const r = await this.must('status', ['status', '--json'], 10_000);
    return JSON.parse(r.stdout) as TailscaleStatus;
  }
}
