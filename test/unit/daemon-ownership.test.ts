import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Leftovers, stopProcesses } from '../../src/node/daemon-ownership.js';
import { StateDirHeld, StateDirLock } from '../../src/util/file-lock.js';
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
  it('finds only the tailscaled it can prove it started: under its data directory, pid and start time recorded (issue 22)', async () => {
    const proc = tempDir();
    const data = tempDir();
    const fake = (pid: number, argv: string[], start = '1000'): void => {
      mkdirSync(join(proc, String(pid)));
      writeFileSync(join(proc, String(pid), 'cmdline'), argv.join('\0') + '\0');
      writeFileSync(join(proc, String(pid), 'stat'), `${pid} (tailscaled) S ${'0 '.repeat(18)}${start} 0 0`);
    };
    // The layout of today (identities/<network>/<hostname>) and of tslink before 0.3 (by-hostname/<hostname>).
    const node = (name: string, record?: string, scope = 'identities/tsnet'): string => {
      const dir = join(data, scope, name);
      mkdirSync(dir, { recursive: true });
      if (record) writeFileSync(join(dir, 'tslink-daemon.pid'), record);
      return dir;
    };
    const web = node('web', '10 1000');
    fake(10, ['/usr/bin/tailscaled', `--statedir=${web}`, '--socket=/x']);
    const web2 = node('web2', '12 1000', 'by-hostname');
    fake(12, ['node', '/opt/double/tailscaled', `--statedir=${web2}`]);
    fake(13, ['/bin/sh', '-c', `echo --statedir=${web}`]);
    const gone = node('gone', '14 1000');
    fake(14, ['/usr/bin/tailscaled', `--statedir=${gone}`]);
    // Not ours: a decoy elsewhere, the official image's daemon, one under our data dir with no
    // record, one whose pid was reused (another start time), one with a path climbing out.
    fake(20, ['/usr/local/bin/tailscaled', '--statedir=/elsewhere']);
    fake(21, ['tailscaled', '--socket=/tmp/tailscaled.sock', '--statedir=/var/lib/tailscale']);
    fake(22, ['/usr/bin/tailscaled', `--statedir=${node('norecord')}`]);
    const reused = node('reused', '23 999');
    fake(23, ['/usr/bin/tailscaled', `--statedir=${reused}`]);
    fake(24, ['/usr/bin/tailscaled', `--statedir=${data}/identities/tsnet/../tsnet/web`]);
    const deep = node('x', '25 1000', 'identities/tsnet/deeper');
    fake(25, ['/usr/bin/tailscaled', `--statedir=${deep}`]);
    writeFileSync(join(proc, 'self'), '');
    const left = await Leftovers.find(data, proc);
    assert.equal(left.count, 3);
    assert.deepEqual(left.take(web), [10]);
    assert.deepEqual(left.take(web), [], 'each leftover is handed out once');
    assert.deepEqual(left.takeAllBut(new Set([web2])), [14], 'the GC gets the leftovers of nodes no endpoint uses');
    assert.deepEqual(left.take(web2), [12]);
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
    assert.equal(existsSync(file), true, 'the lock file stays: a new file there would be a second lock');
    // A lock written by a process that has exited is stale.
    const gone = spawn('true');
    await new Promise((r) => gone.once('exit', r));
    writeFileSync(file, `${gone.pid} 12345`);
    assert.ok(!alive(gone.pid!));
    await new StateDirLock(file).acquire();
    assert.match(readFileSync(file, 'utf8'), new RegExp(`^${process.pid} `));
  });
});
