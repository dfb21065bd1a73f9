import { access, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-file.js';
import { waitUntil } from '../util/wait-until.js';
import { scrubSecrets } from '../util/log.js';
import type { NodeState } from './status.js';
import { classifyUpFailure, loginKey, type NodeSpec } from './node-config.js';
import { CliError, ROUTING_OFF, upArgs, type BackendState, type TailscaleCli, type TailscaleStatus, type UpSettings } from './tailscale-cli.js';

/** In the state directory: the settings of the identity's last successful `up` (never a key). */
const LAST_UP = 'tslink-up.json';
/**
 * tailscaled's state with --statedir (statePathOrDefault in cmd/tailscaled). The daemon writes it
 * when it starts (an empty store is "{}") and never deletes it: absent before a start, the
 * identity has never run.
 */
const STATE_FILE = 'tailscaled.state';

/** Asked before the daemon starts (it creates the file): true when the identity never ran. */
export async function isFreshIdentity(stateDir: string): Promise<boolean> {
  return access(join(stateDir, STATE_FILE)).then(() => false, () => true);
}
/** Backend states of a logged-in node that tailscaled brings back by itself. */
const RESUMABLE: ReadonlySet<BackendState> = new Set(['Running', 'Starting']);
/** How long a resuming node may answer NoState before its first netmap (control is slow or away). */
const FIRST_NETMAP_WAIT_MS = 10_000;
const FIRST_NETMAP_POLL_MS = 200;

export interface LoginInput {
  spec: NodeSpec;
  stateDir: string;
  cli: TailscaleCli;
  authKey(): string | undefined;
  upTimeoutSec: number;
  /** Log in anew even if the state has a login (another control server). */
  forceReauth: boolean;
  /** The node ran before (a plugin restart, a crash): it may resume from its state without `up`. */
  resume: boolean;
  /** isFreshIdentity() before this daemon started: no login to ask the daemon about. */
  fresh: boolean;
}

export type LoginOutcome =
  | { kind: 'up' | 'resumed'; status: TailscaleStatus }
  /** A state the node stays in until something changes (no key, a refused key, approval needed). */
  | { kind: 'stopped'; state: NodeState; lastError: string };

/**
 * Whether the identity has a login. After every daemon start a logged-in node answers `NoState`
 * until control sends its first netmap, so the state alone cannot tell: `HaveNodeKey` can. A node
 * control has logged out (`NeedsLogin`) needs a key again.
 */
export function hasLogin(st: TailscaleStatus): boolean {
  return st.HaveNodeKey === true && st.BackendState !== 'NeedsLogin';
}

/** The status once a logged-in node has left NoState (its first netmap), or as it is at the deadline. */
async function settledStatus(cli: TailscaleCli, first: TailscaleStatus): Promise<TailscaleStatus> {
  let st = first;
  const settled = (): boolean => st.BackendState !== 'NoState' || !hasLogin(st);
  if (settled()) return st;
  await waitUntil(async () => {
    st = await cli.status();
    return settled();
  }, { timeoutMs: FIRST_NETMAP_WAIT_MS, everyMs: FIRST_NETMAP_POLL_MS });
  return st;
}

/** What `up` is told from the spec (the key and re-authentication come per call). */
function upSettings(spec: NodeSpec, timeoutSec: number): UpSettings {
  return {
    hostname: spec.hostname, tags: spec.tags, loginServer: spec.loginServer, timeoutSec,
    exitNode: spec.exitNode, exitNodeAllowLanAccess: spec.exitNodeAllowLanAccess, advertiseExitNode: spec.advertiseExitNode,
    advertiseRoutes: spec.advertiseRoutes, acceptRoutes: spec.acceptRoutes,
  };
}

/**
 * Whether the recorded last `up` had the wanted settings. Routing flags that are off are left out
 * of both sides: an `up` recorded before tslink had them meant them off, and a node recovered
 * after an upgrade must not run `up` only for flags that change nothing.
 */
export function sameUp(last: string | undefined, wanted: readonly string[]): boolean {
  if (last === undefined) return false;
  let saved: unknown;
  try {
    saved = JSON.parse(last);
  } catch {
    return false;
  }
  if (!Array.isArray(saved) || !saved.every((a) => typeof a === 'string')) return false;
  const meaningful = (args: readonly string[]): string => JSON.stringify(args.filter((a) => !ROUTING_OFF.includes(a)));
  return meaningful(saved) === meaningful(wanted);
}

/** An exit node named, not addressed: the CLI resolves a name only against the netmap's peers. */
const byName = (s: UpSettings): boolean => s.exitNode !== undefined && isIP(s.exitNode) === 0;
const hasPeers = (st: TailscaleStatus): boolean => typeof st.Peer === 'object' && st.Peer !== null && Object.keys(st.Peer).length > 0;

/** One `up`: undefined when it worked, the stop when it failed for good; a transient failure throws. */
async function runUp(i: LoginInput, s: UpSettings, input?: string): Promise<LoginOutcome | undefined> {
  const r = await i.cli.call(upArgs(s), (i.upTimeoutSec + 10) * 1000, input);
  if (r.code === 0) return undefined;
  const text = scrubSecrets((r.stderr || r.stdout).trim());
  const c = classifyUpFailure(text);
  if (c.permanent) return { kind: 'stopped', state: c.state, lastError: `tailscale up: ${text}${c.hint ? `; ${c.hint}` : ''}` };
  throw new CliError('up', r);
}

/**
 * Brings a started tailscaled to a logged-in node with the spec's settings: `tailscale up`, with
 * the key only when the identity has no login (never to a node that has a node key: control would
 * check the key again and refuse an expired or spent one), the key only ever on the CLI's stdin.
 * tailscaled resumes a logged-in node from its state with the preferences of its last `up`; when
 * those are the ones wanted and the node ran before, `up` is skipped (a recovery of 50 nodes then
 * costs a few status calls each). A transient failure throws (the daemon is restarted).
 */
export async function logIn(i: LoginInput): Promise<LoginOutcome> {
  const settings = upSettings(i.spec, i.upTimeoutSec);
  const wanted = upArgs(settings);
  const last = i.fresh ? undefined : await readFile(join(i.stateDir, LAST_UP), 'utf8').catch(() => undefined);
  // An identity whose state file did not exist has no login: no status call is needed to know.
  let st: TailscaleStatus = i.fresh ? { BackendState: 'NoState', HaveNodeKey: false } : await i.cli.status();
  const mayResume = i.resume && !i.forceReauth && sameUp(last, wanted) && hasLogin(st);
  // A logged-in node knows its peers only from its first netmap, which a named exit node needs.
  if (mayResume || (byName(settings) && !i.forceReauth && hasLogin(st))) st = await settledStatus(i.cli, st);
  if (mayResume && RESUMABLE.has(st.BackendState)) return { kind: 'resumed', status: st };
  const needsKey = i.forceReauth || !hasLogin(st);
  let input: string | undefined;
  if (needsKey) {
    const key = i.authKey();
    if (!key) {
      return { kind: 'stopped', state: 'logged-out', lastError: 'the node has no login and no auth key is set: give the network --opt tslink.authkey=... or set the plugin\'s TS_AUTHKEY' };
    }
    input = `${loginKey(key, i.spec.ephemeral)}\n`;
  }
  // Without peers (a new login, another control server, no netmap yet) the CLI refuses a named
  // exit node (ipn/prefs.go:912-915): log in without it first, then name it once the node runs.
  const twoSteps = byName(settings) && (needsKey || !hasPeers(st));
  const first = twoSteps ? { ...settings, exitNode: undefined, exitNodeAllowLanAccess: false } : settings;
  let stopped = await runUp(i, { ...first, keyOnStdin: needsKey, forceReauth: i.forceReauth }, input);
  if (!stopped && twoSteps) stopped = await runUp(i, settings);
  if (stopped) return stopped;
  // Lost in a power cut, the next start runs `up` again: no fsync.
  await writeFileAtomic(join(i.stateDir, LAST_UP), JSON.stringify(wanted), 0o600, { durable: false });
  return { kind: 'up', status: await i.cli.status() };
}
