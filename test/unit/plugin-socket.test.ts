import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { statSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { claimSocketPath, restrictSocket } from '../../src/driver/socket.js';
import { socketIsLive } from '../../src/util/socket-probe.js';
import { tempDir } from './fakes.js';

describe('plugin socket', () => {
  it('replaces a stale socket file', async () => {
    const path = join(tempDir(), 'tslink.sock');
    writeFileSync(path, '');
    assert.equal(await socketIsLive(path), false);
    await claimSocketPath(path);
    assert.equal(existsSync(path), false);
  });

  it('refuses a socket another instance is serving', async () => {
    const path = join(tempDir(), 'tslink.sock');
    const other = createServer().listen(path);
    await new Promise((r) => other.once('listening', r));
    await assert.rejects(claimSocketPath(path), /^Error: tslink: another process is already serving .*tslink\.sock; stop it first/);
    assert.equal(existsSync(path), true, 'the live socket is left alone');
    other.close();
  });

  it('leaves the socket at mode 0660 at most', async () => {
    const path = join(tempDir(), 'tslink.sock');
    const s = createServer().listen(path);
    await new Promise((r) => s.once('listening', r));
    await restrictSocket(path);
    assert.equal(statSync(path).mode & 0o777 & ~0o660, 0);
    s.close();
  });
});
