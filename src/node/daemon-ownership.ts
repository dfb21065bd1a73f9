import { open, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A process as /proc names it for good: its pid and its start time (pids are reused). */
interface ProcessMark {
  pid: number;
  start: string;
}

async function startTime(pid: number, proc: string): Promise<string | undefined> {
  const stat = await readFile(join(proc, String(pid), 'stat'), 'utf8').catch(() => undefined);
  // Field 22, counted after the command name, which may itself hold spaces and parentheses.
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

/**
 * The tailscaled processes that run on a state directory, found by their command line: a
 * daemon left by an earlier plugin process (kill -9, a crash) that must not share the node's
 * identity with a new one.
 */
export async function daemonsOn(stateDir: string, proc = '/proc'): Promise<number[]> {
  const want = `--statedir=${stateDir}`;
  const pids: number[] = [];
  for (const name of await readdir(proc).catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const argv = (await readFile(join(proc, name, 'cmdline'), 'utf8').catch(() => '')).split('\0');
    if (argv.includes(want) && argv.some((a) => /(^|\/)tailscaled$/.test(a))) pids.push(Number(name));
  }
  return pids;
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

export class StateDirHeld extends Error {}

/**
 * A lock file in a node's state directory, held by the supervisor for its life: two tailscaled
 * on one state would corrupt it. It names the owning process by pid and start time, so a lock
 * left by a dead plugin (or by an earlier plugin container whose pid was also 1) is stale.
 */
export class StateDirLock {
  private held = false;

  constructor(
    private readonly file: string,
    private readonly proc = '/proc',
  ) {}

  async acquire(): Promise<void> {
    if (this.held) return;
    const me = `${process.pid} ${await startTime(process.pid, this.proc)}`;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fh = await open(this.file, 'wx', 0o600);
        await fh.writeFile(me);
        await fh.close();
        this.held = true;
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const [pid = '', start = ''] = (await readFile(this.file, 'utf8').catch(() => '')).split(' ');
      const live = pid !== '' && (await startTime(Number(pid), this.proc)) === start;
      if (live && `${pid} ${start}` !== me) throw new StateDirHeld(`the node's state is in use by another tslink process (pid ${pid})`);
      if (live) throw new StateDirHeld('the node\'s state is in use by another endpoint in this plugin');
      await rm(this.file, { force: true }); // stale: its owner is gone
    }
    throw new StateDirHeld('could not take the state directory lock');
  }

  async release(): Promise<void> {
    if (!this.held) return;
    this.held = false;
    await rm(this.file, { force: true });
  }
}
