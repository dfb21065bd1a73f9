import { setTimeout as sleep } from 'node:timers/promises';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { StateDirHeld, StateDirLock } from '../util/file-lock.js';
import type { Logger } from '../util/log.js';


/**
 * Makes this process the one tslink serving `dataDir`. Two would start two daemons per node and
 * fight over the same host rules; it is also what lets a start find every leftover tailscaled
 * with one scan. A predecessor still shutting down (its close waits up to 10 s for its work) is
 * waited for, up to `waitMs`. The lock is the kernel's (flock), so it dies with its owner (kill -9,
 * a reboot) and holds across PID namespaces: a managed plugin and a legacy install exclude each
 * other. `holder` is how this process is named to one refused: "managed plugin", "legacy install".
 */
export async function ownDataDir(dataDir: string, log: Logger, waitMs = 15_000, holder = 'tslink'): Promise<StateDirLock> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const lock = new StateDirLock(join(dataDir, 'tslink.lock'), '/proc', `the data directory ${dataDir}`, holder);
  const deadline = Date.now() + waitMs;
  for (let told = false; ; told = true) {
    try {
      await lock.acquire();
      return lock;
    } catch (e) {
      if (!(e instanceof StateDirHeld)) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === undefined) throw new Error(`tslink: cannot lock the data directory ${dataDir}: ${(e as Error).message}`);
        throw new Error(`tslink: cannot take the data directory ${dataDir} (${code}); check that it is writable and not full`);
      }
      if (Date.now() >= deadline) {
        throw new Error(`tslink: ${e.message} and it did not stop within ${waitMs / 1000} s; stop it first (two would run two tailscaled per node and fight over the host's rules)`);
      }
      if (!told) log.warn({ pid: e.pid, dataDir }, 'waiting for the tslink process that uses this data directory to stop');
      await sleep(200);
    }
  }
}
