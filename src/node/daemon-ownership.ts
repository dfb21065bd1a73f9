import { IDENTITIES, LEGACY_IDENTITIES } from './identity-dir.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { startTime } from '../util/proc.js';

/** A process as /proc names it for good: its pid and its start time (pids are reused). */
interface ProcessMark {
  pid: number;
  start: string;
}

/** In a node's state directory: the daemon tslink started there, as `<pid> <start time>`. */
export const DAEMON_RECORD = 'tslink-daemon.pid';

/** Records the daemon just started on `stateDir`, so that a later tslink can prove it is its own. */
export async function recordDaemon(stateDir: string, pid: number, proc = '/proc'): Promise<void> {
  const start = await startTime(pid, proc);
  if (start !== undefined) await writeFile(join(stateDir, DAEMON_RECORD), `${pid} ${start}`, { mode: 0o600 });
}

/**
 * The tailscaled that tslink started on its own state directories: a process counts only if its
 * `--statedir` is a node directory under this data directory (`<dataDir>/identities/<network>/<hostname>`,
 * or `<dataDir>/by-hostname/<hostname>` of tslink before 0.3) and
 * that directory's record names it by pid and start time. Anybody else's tailscaled (the official
 * image's, another tslink's, a user's own) is never touched, and a reused pid is no match.
 */
const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export async function scanDaemons(dataDir: string, proc = '/proc'): Promise<Map<string, number[]>> {
  const root = resolve(dataDir);
  // Exactly one level of directories under each: a network name (Docker's grammar) and a hostname.
  const nodeDir = new RegExp(`^${escapeRegExp(root)}/(?:${IDENTITIES}/[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}|${LEGACY_IDENTITIES})/[A-Za-z0-9-]{1,63}$`);
  const names = (await readdir(proc).catch(() => [] as string[])).filter((n) => /^\d+$/.test(n));
  const found = new Map<string, number[]>();
  await Promise.all(
    names.map(async (name) => {
      const argv = (await readFile(join(proc, name, 'cmdline'), 'utf8').catch(() => '')).split('\0');
      if (!argv.some((a) => /(^|\/)tailscaled$/.test(a))) return;
      const dirs = argv.filter((a) => a.startsWith('--statedir=')).map((a) => a.slice('--statedir='.length));
      if (dirs.length !== 1) return;
      const dir = dirs[0]!;
      if (!nodeDir.test(dir) || dir.split('/').some((step) => step === '.' || step === '..')) return;
      const [pid, start] = (await readFile(join(dir, DAEMON_RECORD), 'utf8').catch(() => '')).split(' ');
      if (pid !== name || start === undefined || (await startTime(Number(name), proc)) !== start) return;
      found.set(dir, [...(found.get(dir) ?? []), Number(name)]);
    }),
  );
  return found;
}

/**
 * The tailscaled left on state directories by earlier plugin processes (kill -9, a crash), found
 * by one scan of /proc when this process takes the data directory: such a daemon must not share
 * its node's identity with a new one. One scan is enough because the data directory lock admits
 * one live tslink at a time, so no daemon on it appears later except this process's own. (A scan
 * per node start cost a recovery of 50 nodes 50 full reads of /proc.)
 */
export class Leftovers {
  private constructor(private readonly found: Map<string, number[]>) {}

  static async find(dataDir: string, proc = '/proc'): Promise<Leftovers> {
    return new Leftovers(await scanDaemons(dataDir, proc));
  }

  static none(): Leftovers {
    return new Leftovers(new Map());
  }

  get count(): number {
    return [...this.found.values()].reduce((n, pids) => n + pids.length, 0);
  }

  /** The leftovers on `stateDir`, once: the caller stops them (stopProcesses checks they are the same processes). */
  take(stateDir: string): number[] {
    const pids = this.found.get(stateDir) ?? [];
    this.found.delete(stateDir);
    return pids;
  }

  /** Every leftover not on one of `keep`, once (nodes no endpoint uses any more). */
  takeAllBut(keep: ReadonlySet<string>): number[] {
    return [...this.found.keys()].filter((d) => !keep.has(d)).flatMap((d) => this.take(d));
  }
}

/** Stops processes the way a real tailscaled can clean up: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopProcesses(pids: readonly number[], graceMs: number, proc = '/proc'): Promise<void> {
  const marks = (await Promise.all(pids.map(async (pid) => ({ pid, start: await startTime(pid, proc) })))).filter((m): m is ProcessMark => m.start !== undefined);
  const alive = async (m: ProcessMark): Promise<boolean> => (await startTime(m.pid, proc)) === m.start;
  const signal = (m: ProcessMark, sig: NodeJS.Signals): void => {
    try {
      process.kill(m.pid, sig);
    } catch {
      /* gone already */
    }
  };
  marks.forEach((m) => signal(m, 'SIGTERM'));
  const deadline = Date.now() + graceMs;
  let left = marks;
  while (left.length && Date.now() < deadline) {
    await sleep(20);
    left = (await Promise.all(left.map(async (m) => ((await alive(m)) ? [m] : [])))).flat();
  }
  left.forEach((m) => signal(m, 'SIGKILL'));
  for (let i = 0; i < 100 && left.length; i++) {
    await sleep(10);
    left = (await Promise.all(left.map(async (m) => ((await alive(m)) ? [m] : [])))).flat();
  }
}
