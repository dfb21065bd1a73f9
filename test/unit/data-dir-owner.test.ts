import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ownDataDir } from '../../src/state/data-dir-owner.js';
import { captureLogger, tempDir } from './fakes.js';
import { holdLock, stopAll } from './lock-holders.js';

describe('data directory owner', () => {
  it('lets one tslink process serve a data directory and waits, bounded, for a live predecessor', async () => {
    const dir = tempDir();
    // A live process that is not this one holds the lock: another tslink serving the directory.
    const other = await holdLock(join(dir, 'tslink.lock'), 'managed plugin');
    await assert.rejects(ownDataDir(dir, captureLogger().log, 300), (e: Error) => {
      assert.match(e.message, new RegExp(`another tslink process \\(pid ${other.child.pid}, managed plugin\\).*did not stop within 0.3 s; stop it first`));
      return true;
    });
    // The predecessor stops while the next one waits: the next one takes over.
    const { log, lines } = captureLogger();
    const taking = ownDataDir(dir, log, 5000, 'legacy install');
    setTimeout(() => other.child.kill('SIGKILL'), 300);
    const lock = await taking;
    await stopAll([other]);
    assert.match(readFileSync(join(dir, 'tslink.lock'), 'utf8'), new RegExp(`^${process.pid} \\S+ legacy install\n$`));
    assert.equal(lines.filter((l) => l.includes('waiting for the tslink process')).length, 1, 'the wait is said once');
    await lock.release();
  });

  it('takes over the lock of a tslink that was killed', async () => {
    const dir = tempDir();
    const gone = spawn('true');
    await new Promise((r) => gone.once('exit', r));
    writeFileSync(join(dir, 'tslink.lock'), `${gone.pid} 1`);
    const { log, lines } = captureLogger();
    await ownDataDir(dir, log, 5000);
    assert.match(readFileSync(join(dir, 'tslink.lock'), 'utf8'), new RegExp(`^${process.pid} `));
    assert.deepEqual(lines.filter((l) => l.includes('waiting')), [], 'a dead owner is not waited for');
  });

  it('says it cannot lock when flock(1) is not there to run, rather than blaming the directory', async () => {
    const dir = tempDir();
    const path = process.env['PATH'];
    process.env['PATH'] = dir; // nothing to run there
    try {
      await assert.rejects(ownDataDir(dir, captureLogger().log, 300), (e: Error) => {
        assert.match(e.message, /^tslink: cannot lock the data directory .*: cannot run flock .*util-linux/);
        return true;
      });
    } finally {
      if (path === undefined) delete process.env['PATH'];
      else process.env['PATH'] = path;
    }
  });
});
