import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ownDataDir } from '../../src/state/data-dir-owner.js';
import { captureLogger, tempDir } from './fakes.js';

describe('data directory owner', () => {
  it('lets one tslink process serve a data directory and waits, bounded, for a live predecessor', async () => {
    const dir = tempDir();
    // A live process that is not this one holds the lock: another tslink serving the directory.
    const other = spawn('sleep', ['30']);
    await new Promise((r) => setTimeout(r, 50));
    const start = readFileSync(`/proc/${other.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19];
    writeFileSync(join(dir, 'tslink.lock'), `${other.pid} ${start}`);
    await assert.rejects(ownDataDir(dir, captureLogger().log, 300), (e: Error) => {
      assert.match(e.message, new RegExp(`another tslink process \\(pid ${other.pid}\\).*did not stop within 0.3 s; stop it first`));
      return true;
    });
    // The predecessor stops while the next one waits: the next one takes over.
    const { log, lines } = captureLogger();
    const taking = ownDataDir(dir, log, 5000);
    setTimeout(() => other.kill('SIGKILL'), 300);
    const lock = await taking;
    assert.match(readFileSync(join(dir, 'tslink.lock'), 'utf8'), new RegExp(`^${process.pid} `));
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
});
