import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../src/util/atomic-file.js';
import { tempDir } from './fakes.js';

describe('atomic file writes', () => {
  for (const durable of [true, false]) {
    it(`replace a file whole with the asked mode and leave no temp file (durable: ${durable})`, async () => {
      const dir = tempDir();
      const file = join(dir, 'rec.json');
      writeFileSync(file, 'old', { mode: 0o644 });
      const umask = process.umask(0o000);
      try {
        await writeFileAtomic(file, '{"new":true}', 0o600, { durable });
      } finally {
        process.umask(umask);
      }
      assert.equal(readFileSync(file, 'utf8'), '{"new":true}');
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.deepEqual(readdirSync(dir), ['rec.json']);
    });
  }

  it('leaves the old content and no temp file when the write fails', async () => {
    const dir = tempDir();
    const file = join(dir, 'rec.json');
    writeFileSync(file, 'old');
    // A data string the file system refuses midway is hard to make; a directory in the way of the
    // rename is not: the temp file was written, the rename fails.
    const blocked = join(dir, 'blocked');
    mkdirSync(join(blocked, 'x'), { recursive: true });
    await assert.rejects(writeFileAtomic(blocked, 'new', 0o600, { durable: false }));
    assert.deepEqual(readdirSync(dir).sort(), ['blocked', 'rec.json']);
    assert.equal(readFileSync(file, 'utf8'), 'old');
  });
});
