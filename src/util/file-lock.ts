import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import { close as fsClose, constants, fstat, ftruncate, open as fsOpen, write as fsWrite } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { childEnv } from './exec.js';
import { startTime } from './proc.js';

/** A lock StateDirLock could not take: who holds it, as well as its record can tell. */
export class StateDirHeld extends Error {
  constructor(
    message: string,
    readonly pid?: number,
  ) {
    super(message);
  }
}

/** How long a refused acquirer waits for the new holder's record, to name it. */
const HOLDER_RECORD_WAIT_MS = 2_000;

/** The util-linux flock(1), found on PATH as `ip`, `nsenter` and `setpriv` are (/usr/bin/flock on Debian). */
const FLOCK = 'flock';

const openFd = promisify(fsOpen);
const closeFd = promisify(fsClose);
const fstatFd = promisify(fstat);
const truncateFd = promisify(ftruncate);
const writeFd = promisify(fsWrite);

/**
 * Takes flock(2) LOCK_EX|LOCK_NB on the open file description behind `fd`, through util-linux's
 * flock(1) given it as its fd 3 (Node has no flock binding). A flock lock belongs to the open file
 * description, not to the process that asked, so it stays held by `fd` after the child exits.
 * True: taken; false: someone else holds it (flock's exit 1 with --nonblock).
 */
function flockNow(fd: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const child = spawn(FLOCK, ['--nonblock', '--exclusive', '3'], { stdio: ['ignore', 'ignore', 'pipe', fd], env: childEnv() });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.once('error', (e) => reject(new Error(`cannot run flock to lock a state file (util-linux's flock is needed): ${e.message}`)));
    child.once('close', (code, signal) => {
      if (code === 0) resolve(true);
      else if (code === 1) resolve(false);
      else reject(new Error(`flock exited ${code ?? signal}${stderr.trim() ? `: ${stderr.trim()}` : ''}`));
    });
  });
}

/**
 * The lock files this process holds, by device and inode, and its attempts still in flight:
 * flock refuses a second open file description even within one process, and such a refusal is
 * another endpoint of this plugin, not another tslink.
 */
const heldHere = new Map<string, number>();
const tryingHere = new Map<string, Set<Promise<boolean>>>();

/** This process as a lock record names it: `<pid> <start time>`. */
async function ownMark(proc: string): Promise<string> {
  return `${process.pid} ${(await startTime(process.pid, proc)) ?? '-'}`;
}

/**
 * An exclusive lock on a file, held for as long as this process keeps it (it dies with the
 * process, kill -9 included: the kernel drops a flock lock when its last descriptor closes): a
 * node's state directory, which two tailscaled would corrupt, or the plugin's data directory.
 * The file is never deleted: a new file at the same path would be a second, separate lock.
 *
 * Once held, the file names the holder (`<pid> <start time> <holder>`), only so that a refused
 * acquirer can say who has it: whether the lock is held is the kernel's answer, never the
 * record's, so a holder in another PID namespace (a managed plugin and a legacy install on one
 * data directory) is seen as holding it all the same.
 */
export class StateDirLock {
  private fd?: number;
  private key?: string;
  private taking?: Promise<void>;

  /**
   * `proc` is where this process's start time is read for the record; `what` names the locked
   * thing in messages; `holder` describes this process to a refused acquirer (one line).
   */
  constructor(
    private readonly file: string,
    private readonly proc = '/proc',
    private readonly what = 'the node\'s state',
    private readonly holder = 'tslink',
  ) {}

  /** Takes the lock, or throws StateDirHeld naming who holds it; a no-op while this instance holds it. */
  async acquire(): Promise<void> {
    if (this.fd !== undefined) return;
    this.taking ??= this.take().finally(() => (this.taking = undefined));
    return this.taking;
  }

  private async take(): Promise<void> {
    const me = await ownMark(this.proc);
    // No O_TRUNC: the file may be another holder's, and its record says who that is.
    const fd = await openFd(this.file, constants.O_RDWR | constants.O_CREAT, 0o600);
    let key: string;
    try {
      const st = await fstatFd(fd);
      key = `${st.dev}:${st.ino}`;
      const trying = tryingHere.get(key) ?? new Set<Promise<boolean>>();
      tryingHere.set(key, trying);
      const attempt = flockNow(fd).then((won) => {
        if (won) heldHere.set(key, (heldHere.get(key) ?? 0) + 1);
        return won;
      });
      trying.add(attempt);
      const won = await attempt.finally(() => {
        trying.delete(attempt);
        if (!trying.size) tryingHere.delete(key);
      });
      if (!won) throw await this.refusal(key, me);
    } catch (e) {
      await closeFd(fd).catch(() => undefined);
      throw e;
    }
    this.fd = fd;
    this.key = key;
    try {
      // Over the old record in one write, then cut to length: a reader never finds it empty.
      const record = Buffer.from(`${me} ${this.holder.replace(/\s+/g, ' ').trim()}\n`);
      await writeFd(fd, record, 0, record.length, 0);
      await truncateFd(fd, record.length);
    } catch (e) {
      await this.release();
      throw e;
    }
  }

  /** Who holds the lock this process was just refused, as well as its record can tell. */
  private async refusal(key: string, me: string): Promise<StateDirHeld> {
    // Another acquirer in this process may have won a moment ago and not be counted yet.
    await Promise.allSettled([...(tryingHere.get(key) ?? [])]);
    if (heldHere.has(key)) return new StateDirHeld(`${this.what} is in use by another endpoint in this plugin`, process.pid);
    // A holder writes its record just after it takes the lock: until then the file is empty (new)
    // or names an earlier holder, which is not this process (it does not hold the lock) and may
    // be a dead one (a moment's window, in which the message names that one). The holder may be
    // slow to write it on a loaded host: 300 ms was once too short with 50 processes on 2 cores.
    for (const end = Date.now() + HOLDER_RECORD_WAIT_MS; Date.now() < end; ) {
      const m = /^(\d+) (\S+) ?(.*)\n/.exec(await readFile(this.file, 'utf8').catch(() => ''));
      if (m && `${m[1]} ${m[2]}` !== me) {
        const pid = Number(m[1]);
        return new StateDirHeld(`${this.what} is in use by another tslink process (pid ${pid}${m[3] ? `, ${m[3]}` : ''})`, pid);
      }
      await sleep(15);
    }
    return new StateDirHeld(`${this.what} is in use by another tslink process`);
  }

  /** Unlocks (closing the descriptor drops the flock lock); the file stays. */
  async release(): Promise<void> {
    await this.taking?.catch(() => undefined);
    const { fd, key } = this;
    if (fd === undefined || key === undefined) return;
    this.fd = this.key = undefined;
    const n = (heldHere.get(key) ?? 1) - 1;
    if (n > 0) heldHere.set(key, n);
    else heldHere.delete(key);
    await closeFd(fd);
  }
}
