/**
 * Runs last in each e2e stage: every log line and status file the suite produced (legacy
 * plugins' logs and data directories, managed plugins' data mounts, dockerd's log, which holds
 * managed plugins' output) is searched for the auth keys the tests used. Only a network's own
 * record (networks/*.json, mode 0600) may hold its key.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ENGINE, e2eSkipReason } from './harness.js';

const skip = await e2eSkipReason();
// Every key literal the e2e and attack tests use has this shape (tskey-auth-<id>-<secret>).
const KEY = /tskey-(?:auth|client)-[A-Za-z0-9]{6,}-[A-Za-z0-9]{6,}/g;

function* files(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p, { throwIfNoEntry: false });
    if (st?.isDirectory()) yield* files(p);
    else if (st?.isFile()) yield p;
  }
}

describe(`no auth key in any log line or status file (Docker ${ENGINE})`, { skip }, () => {
  it('finds none', () => {
    const roots = [
      ...readdirSync(tmpdir()).filter((n) => /^tslink-(e2e-data|managed-data)-/.test(n)).map((n) => join(tmpdir(), n)),
      '/var/lib/tslink-e2e',
    ].filter((p) => existsSync(p));
    let scanned = 0;
    const leaks: string[] = [];
    for (const root of roots) {
      const candidates = statSync(root).isDirectory() ? [...files(root)] : [root];
      for (const f of candidates) {
        // A network's record holds its key on purpose (0600); dockerd's own data root is not ours.
        if (/\/networks\/[^/]+\.json$/.test(f) || f.includes('/docker-20.10/') || f.includes('/docker-28.5/')) continue;
        if (!/\.(log|json|jsonl)$/.test(f) && !f.endsWith('.plugin.log')) continue;
        scanned++;
        const hits = readFileSync(f, 'latin1').match(KEY);
        if (hits) leaks.push(`${f}: ${hits[0].slice(0, 16)}…`);
      }
    }
    process.stdout.write(`# scanned ${scanned} log and status files\n`);
    assert.ok(scanned > 0, 'there was something to scan');
    assert.deepEqual(leaks, []);
  });
});
