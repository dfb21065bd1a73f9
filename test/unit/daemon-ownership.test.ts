import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Leftovers, StateDirHeld, StateDirLock, stopProcesses } from '../../src/node/daemon-ownership.js';
import { tempDir } from './fakes.js';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
};

describe('daemon ownership', () => {
  it('finds the tailscaled processes of one state directory by their command line', async () => {
    const proc = tempDir();
    const fake = (pid: number, argv: string[]): void => {
      mkdirSync(join(proc, String(pid)));
      writeFileSync(join(proc, String(pid), 'cmdline'), argv.join('\0') + '\0');
    };
    fake(10, ['/usr/bin/tailscaled', '--statedir=/data/by-hostname/web', '--socket=/x']);
    fake(11, ['node', '/opt/double/tailscaled', '--statedir=/data/by-hostname/web']);
    fake(12, ['/usr/bin/tailscaled', '--statedir=/data/by-hostname/web2']);
    fake(13, ['/bin/sh', '-c', 'echo --statedir=/data/by-hostname/web']);
    writeFileSync(join(proc, 'self'), '');
    fake(14, ['/usr/bin/tailscaled', '--statedir=/data/by-hostname/gone']);
    const left = await Leftovers.find(proc);
    assert.equal(left.count, 4);
    assert.deepEqual(left.take('/data/by-hostname/web').sort(), [10, 11]);
    assert.deepEqual(left.take('/data/by-hostname/web'), [], 'each leftover is handed out once');
    assert.deepEqual(left.take('/data/by-hostname/x'), []);
    assert.deepEqual(left.takeAllBut(new Set(['/data/by-hostname/web2'])), [14], 'the GC gets the leftovers of nodes no endpoint uses');
    assert.deepEqual(left.take('/data/by-hostname/web2'), [12]);
  });

  it('stops with SIGTERM first and SIGKILL only what outlives the grace period', async () => {
    const polite = spawn('sleep', ['60']);
    const stubborn = spawn('sh', ['-c', 'trap "" TERM; while :; do sleep 1; done']);
    await new Promise((r) => setTimeout(r, 100));
    const ended = (c: typeof polite): Promise<NodeJS.Signals | null> => new Promise((r) => c.once('exit', (_code, sig) => r(sig)));
    const [p, s] = [ended(polite), ended(stubborn)];
    await stopProcesses([polite.pid!, stubborn.pid!], 300);
    assert.equal(await p, 'SIGTERM');
    assert.equal(await s, 'SIGKILL');
  });

  it('lets one owner hold a state directory, and takes over a lock whose owner is gone', async () => {
    const dir = tempDir();
    const file = join(dir, 'tslink.lock');
    const a = new StateDirLock(file);
    await a.acquire();
    await assert.rejects(new StateDirLock(file).acquire(), StateDirHeld);
    await a.release();
    assert.equal(existsSync(file), false);
    // A lock written by a process that has exited is stale.
    const gone = spawn('true');
    await new Promise((r) => gone.once('exit', r));
    writeFileSync(file, `${gone.pid} 12345`);
    assert.ok(!alive(gone.pid!));
    await new StateDirLock(file).acquire();
    assert.match(readFileSync(file, 'utf8'), new RegExp(`^${process.pid} `));
  });
});
