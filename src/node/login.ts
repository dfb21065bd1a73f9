import { access, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-file.js';
import { scrubSecrets } from '../util/log.js';
import type { NodeState } from './status.js';
import { classifyUpFailure, loginKey, type NodeSpec } from './node-config.js';
import { CliError, upArgs, type TailscaleCli, type TailscaleStatus } from './tailscale-cli.js';

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
const RESUMABLE = new Set(['Running', 'Starting']);

export interface LoginInput {
  spec: NodeSpec;
  stateDir: string;
  runDir: string;
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
 * Brings a started tailscaled to a logged-in node with the spec's settings: `tailscale up`, with
 * the key only when the state has no login, the key only ever in a 0600 file deleted right
 * after. tailscaled resumes a logged-in node from its state with the preferences of its last
 * `up`; when those are the ones wanted and the node ran before, `up` is skipped (a recovery of 50
 * nodes then costs one status call each). A transient failure throws (the daemon is restarted).
 */
export async function logIn(i: LoginInput): Promise<LoginOutcome> {
  // An identity whose state file did not exist has no login: no status call is needed to know.
  const st: TailscaleStatus = i.fresh ? { BackendState: 'NoState' } : await i.cli.status();
  const needsKey = st.BackendState === 'NeedsLogin' || st.BackendState === 'NoState' || i.forceReauth;
  const settings = { hostname: i.spec.hostname, tags: i.spec.tags, loginServer: i.spec.loginServer, timeoutSec: i.upTimeoutSec };
  const wanted = JSON.stringify(upArgs(settings));
  const last = await readFile(join(i.stateDir, LAST_UP), 'utf8').catch(() => undefined);
  if (i.resume && !needsKey && RESUMABLE.has(st.BackendState ?? '') && last === wanted) return { kind: 'resumed', status: st };
  let keyFile: string | undefined;
  if (needsKey) {
    const key = i.authKey();
    if (!key) {
      return { kind: 'stopped', state: 'logged-out', lastError: 'the node has no login and no auth key is set: give the network --opt tslink.authkey=... or set the plugin\'s TS_AUTHKEY' };
    }
    keyFile = join(i.runDir, 'authkey');
    await writeFile(keyFile, loginKey(key, i.spec.ephemeral), { mode: 0o600 });
  }
  let r;
  try {
    r = await i.cli.call(upArgs({ ...settings, authKeyFile: keyFile, forceReauth: i.forceReauth }), (i.upTimeoutSec + 10) * 1000);
  } finally {
    if (keyFile) await rm(keyFile, { force: true });
  }
  if (r.code !== 0) {
    const text = scrubSecrets((r.stderr || r.stdout).trim());
    const c = classifyUpFailure(text);
    if (c.permanent) return { kind: 'stopped', state: c.state, lastError: `tailscale up: ${text}` };
    throw new CliError('up', r);
  }
  // Lost in a power cut, the next start runs `up` again: no fsync.
  await writeFileAtomic(join(i.stateDir, LAST_UP), wanted, 0o600, { durable: false });
  return { kind: 'up', status: await i.cli.status() };
}
