import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StateDirHeld, StateDirLock } from '../../src/util/file-lock.js';
import { tempDir } from './fakes.js';
import { holdLock, startAcquirers, stopAll } from './lock-holders.js';

/** A pid and start time of a process that has exited and been reaped: what a dead holder leaves. */
async function deadRecord(): Promise<string> {
  const gone = spawn('sleep', ['30']);
  await new Promise((r) => gone.once('spawn', r));
  await new Promise((r) => setTimeout(r, 20));
  const start = readFileSync(`/proc/${gone.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19];
  gone.kill('SIGKILL');
  await new Promise((r) => gone.once('exit', r));
  return `${gone.pid} ${start}`;
}

/**
 * 200 acquirers: PROCESSES separate OS processes, each with 200 / PROCESSES acquirers of its own
 * (as the endpoints of one plugin). A node process costs ~50 ms of CPU to start: 50 keep a race
 * at ~3 s on 2 cores.
 */
const ACQUIRERS = 200;
const PROCESSES = 50;

interface Refusal {
  message: string;
  pid?: number;
  held: string;
  /** The pid of the process whose acquirer was refused. */
  by: number;
}

async function race(prepare: (file: string) => Promise<void> | void): Promise<{ winners: number[]; lost: Refusal[] }> {
  const file = join(tempDir(), 'tslink.lock');
  await prepare(file);
  const procs = Array.from({ length: PROCESSES }, () => startAcquirers(file, ACQUIRERS / PROCESSES, 'racer'));
  try {
    await Promise.all(procs.map((p) => p.said('ready')));
    for (const p of procs) p.child.stdin!.write('go\n');
    await Promise.all(procs.map((p) => p.said('done')));
    const winners = procs.flatMap((p) => p.lines.filter((l) => l === 'won').map(() => p.child.pid!));
    const lost = procs.flatMap((p) => p.lines.filter((l) => l.startsWith('lost ')).map((l) => ({ ...JSON.parse(l.slice('lost '.length)), by: p.child.pid! }) as Refusal));
    assert.equal(winners.length + lost.length, ACQUIRERS, 'every acquirer answered');
    return { winners, lost };
  } finally {
    await stopAll(procs);
  }
}

/** One race of 200; `stale` writes the lock file first. Exactly one wins, and every other is told who. */
async function raceOnce(stale: (() => Promise<string>) | undefined): Promise<void> {
  let old = '';
  const { winners, lost } = await race(async (file) => {
    if (stale) writeFileSync(file, (old = await stale()));
  });
  assert.equal(winners.length, 1, `winners: ${winners.length}`);
  const winner = winners[0]!;
  for (const r of lost) {
    assert.equal(r.held, 'StateDirHeld', r.message);
    if (r.by === winner) assert.deepEqual([r.message, r.pid], ['the race is in use by another endpoint in this plugin', winner]);
    // Refused in the moment before the winner wrote its record, one may name the dead holder.
    else if (old && r.pid === Number(old.split(' ')[0])) assert.equal(r.message, `the race is in use by another tslink process (pid ${r.pid})`);
    else assert.deepEqual([r.message, r.pid], [`the race is in use by another tslink process (pid ${winner}, racer)`, winner]);
  }
}

describe('state directory lock: one owner, held by the kernel (issue 22)', { timeout: 120_000 }, () => {
  // The old lock (create, then write the owner; an empty or dead record is deleted) let 2 to 67
  // of these 200 win with a stale or an empty file every time, and more than one with no file
  // in about 4 races of 10: hence three races with no file.
  for (const [name, stale, rounds] of [
    ['no lock file', undefined, 3],
    ['a stale lock file (a dead process)', deadRecord, 1],
    ['an empty lock file', async () => '', 1],
  ] as const) {
    it(`admits exactly one of ${ACQUIRERS} racing acquirers with ${name}${rounds > 1 ? ` (${rounds} races)` : ''}`, async () => {
      for (let round = 0; round < rounds; round++) await raceOnce(stale);
    });
  }

  it('lets the next acquirer win at once when the holder is killed with SIGKILL, even while its child lives', async () => {
    const file = join(tempDir(), 'tslink.lock');
    const holder = await holdLock(file, 'legacy install', '--spawn-sleep');
    let grandchild = 0;
    try {
      grandchild = Number(holder.lines.find((l) => l.startsWith('child '))!.slice('child '.length));
      await assert.rejects(new StateDirLock(file).acquire(), StateDirHeld);
      holder.child.kill('SIGKILL');
      await holder.exited;
      process.kill(grandchild, 0); // the holder's child (its tailscaled) is still running
      const lock = new StateDirLock(file);
      const t0 = Date.now();
      await lock.acquire();
      assert.ok(Date.now() - t0 < 1000, `took ${Date.now() - t0} ms`);
      assert.match(readFileSync(file, 'utf8'), new RegExp(`^${process.pid} `));
      await lock.release();
    } finally {
      if (grandchild) process.kill(grandchild, 'SIGKILL');
      await stopAll([holder]);
    }
  });

  it('names the holder by pid and description when it refuses', async () => {
    const file = join(tempDir(), 'tslink.lock');
    const holder = await holdLock(file, 'legacy install');
    try {
      await assert.rejects(new StateDirLock(file, '/proc', 'the data directory /x').acquire(), (e: StateDirHeld) => {
        assert.ok(e instanceof StateDirHeld);
        assert.equal(e.message, `the data directory /x is in use by another tslink process (pid ${holder.child.pid}, legacy install)`);
        assert.equal(e.pid, holder.child.pid);
        return true;
      });
    } finally {
      await stopAll([holder]);
    }
  });

  it('holds across PID namespaces: a holder that is pid 1 in its own (a managed plugin) is not taken for dead', async (t) => {
    const unshare = ['unshare', '--pid', '--fork', '--mount-proc', '--kill-child'];
    if (spawnSync(unshare[0]!, [...unshare.slice(1), 'true']).status !== 0) return t.skip('making a PID namespace needs root');
    const file = join(tempDir(), 'tslink.lock');
    const holder = await holdLock(file, 'managed plugin', '', unshare);
    try {
      // Pid 1 here is this machine's init, alive with another start time: the old lock took the record as stale.
      await assert.rejects(new StateDirLock(file, '/proc', 'the data directory /x').acquire(), (e: StateDirHeld) => {
        assert.equal(e.message, 'the data directory /x is in use by another tslink process (pid 1, managed plugin)');
        return true;
      });
    } finally {
      await stopAll([holder]);
    }
    const next = new StateDirLock(file);
    await next.acquire(); // and it is free once that process has gone
    await next.release();
  });

  it('says so when the holder is another endpoint in this very process', async () => {
    const file = join(tempDir(), 'tslink.lock');
    const a = new StateDirLock(file);
    await a.acquire();
    await assert.rejects(new StateDirLock(file).acquire(), (e: StateDirHeld) => {
      assert.equal(e.message, "the node's state is in use by another endpoint in this plugin");
      assert.equal(e.pid, process.pid);
      return true;
    });
    // Two at once in one process: one wins, the other is told it is this plugin.
    await a.release();
    const [b, c] = [new StateDirLock(file), new StateDirLock(file)];
    const results = await Promise.allSettled([b.acquire(), c.acquire()]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.match((refused.reason as Error).message, /another endpoint in this plugin/);
    await b.release();
    await c.release();
  });

  it('release() unlocks without deleting the file; acquiring twice is a no-op; a later acquire wins', async () => {
    const file = join(tempDir(), 'tslink.lock');
    const a = new StateDirLock(file);
    await a.acquire();
    await a.acquire();
    await assert.rejects(new StateDirLock(file).acquire(), StateDirHeld);
    await a.release();
    assert.ok(existsSync(file), 'the lock file stays');
    await a.release(); // twice is harmless
    const b = new StateDirLock(file);
    await b.acquire();
    await assert.rejects(a.acquire(), StateDirHeld, 'the released instance no longer holds it');
    await b.release();
    await a.acquire();
    await a.release();
  });
});
