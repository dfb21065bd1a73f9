/** node/rotating-log.ts: a tailscaled's output reaches its file, whatever state the file's directory is in. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { RotatingLog } from '../../src/node/rotating-log.js';
import { tempDir } from './fakes.js';

describe('rotating log', () => {
  it('writes into a directory that does not exist yet (the first node of a new data directory)', async () => {
    const file = join(tempDir(), 'logs', 'a-tailscaled.log');
    const log = new RotatingLog(file);
    log.write(Buffer.from('LogID: 1\n'));
    await log.close();
    assert.equal(readFileSync(file, 'utf8'), 'LogID: 1\n');
  });

  it('opens its file again after a failure, instead of dropping the rest of the output', async () => {
    const dir = join(tempDir(), 'logs');
    const file = join(dir, 'b-tailscaled.log');
    const log = new RotatingLog(file);
    log.write(Buffer.from('one\n'));
    await sleep(20);
    rmSync(dir, { recursive: true });
    // The removed directory's file takes this write; the stream then fails on a directory that is gone.
    const broken = (log as unknown as { stream: { destroy(e: Error): void } }).stream;
    broken.destroy(new Error('EIO'));
    await sleep(1_100);
    log.write(Buffer.from('two\n'));
    await log.close();
    assert.equal(readFileSync(file, 'utf8'), 'two\n');
  });

  it('rotates to <file>.1 past its size', async () => {
    const file = join(tempDir(), 'c.log');
    const log = new RotatingLog(file, 8);
    log.write(Buffer.from('12345\n'));
    await sleep(20); // the file is open (10 MB in real use: never within its first milliseconds)
    log.write(Buffer.from('67890\n'));
    await log.close();
    await sleep(20);
    assert.equal(readFileSync(`${file}.1`, 'utf8'), '12345\n');
    assert.equal(readFileSync(file, 'utf8'), '67890\n');
  });
});
