/**
 * The test double's contract, checked against the real binary (issue 21): the same argv, without a
 * daemon and with one, run against test/double and against the pinned Tailscale that
 * scripts/build-tailscale.sh built; the exit code and the first line of stderr must agree. A
 * difference fails the suite, so the double cannot drift from the release tslink ships.
 * `make test` provisions before this stage, so the real binaries are always there.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SUPPORTED_TAILSCALE } from '../../src/config/tailscale-features.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const DOUBLE = join(ROOT, 'test/double');
const REAL = join(ROOT, '.cache/tailscale', `v${SUPPORTED_TAILSCALE}`);

interface Run { code: number; stderr: string; stdout: string }
function run(file: string, args: readonly string[], timeoutMs = 20_000): Promise<Run> {
  return new Promise((res) => {
    execFile(file, args, { timeout: timeoutMs, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' } }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      res({ code, stdout, stderr });
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'tslink-real-contract-'));
const nowhere = join(dir, 'nowhere.sock');
/** Go's log prefix (a date) and the socket path are not part of the contract. */
const normal = (s: string): string => (s.split('\n').find((l) => l.trim() !== '') ?? '').replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d /, '').split(dir).join('<dir>');

/** Argv that the double answers without a daemon, as tslink's calls and their mistakes would. */
const CLI_CASES: string[][] = [
  ['up', '--bogus'],
  ['serve', '--https-port=443', '3000'],
  ['serve', 'drain', '--all', 'svc:web'],
  ['up', '--reset', '--accept-dns=false', '--timeout=5s', 'extra'],
  ['status', '--json', 'extra'],
  ['logout', 'a', 'b'],
  ['version', 'x'],
  ['serve', 'drain', 'svc:a', 'svc:b'],
  ['serve', 'advertise', 'svc:a', 'svc:b'],
  ['serve', '--bg', '--https=443', 'http://127.0.0.1:1', 'http://127.0.0.1:2'],
  ['serve', '--bg', '--https=443', 'a', 'b', 'c'],
  ['frobnicate'],
  ['up', '--hostname=a', '--hostname=b'],
  ['serve', '--bg', '--bg', '--https=443', '3000'],
  ['up', '--reset=maybe'],
  ['serve', '--bg=maybe', '--https=443', '3000'],
  ['serve', '--bg', '--https=abc', '3000'],
  ['serve', '--bg', '--tcp=-1', '3000'],
  ['serve', '--bg', '--https'],
  ['up', '--timeout=60'],
  ['serve', '--bg', '--https=443', '--tcp=5432', '3000'],
  ['serve', '--bg', '--tcp=70000', '3000'],
  ['serve', '--bg', '--https=443', '--proxy-protocol=1', 'http://127.0.0.1:1'],
  ['serve', '--bg', '--tcp=5432', '--proxy-protocol=3', 'tcp://127.0.0.1:5432'],
  ['serve', '--service=svc:web-', '--https=443', '3000'],
  ['serve', '--service=web', '--https=443', '3000'],
  ['serve', 'drain', 'svc:Web-'],
  ['serve', 'advertise', 'web'],
  ['serve', 'drain', 'svc:'],
  ['serve', 'drain', 'svc:we_b'],
  ['serve', 'advertise'],
  ['serve', '--bg', '--https=443', '--accept-app-caps=example/cap', '3000'],
  ['serve', '--service=svc:web', '--bg=false', '--https=443', '3000'],
  ['serve', '--bg', '--https=443', '--set-path=/a/../b', '3000'],
  ['status', '--json'],
  ['up', '--reset', '--hostname=web', '--accept-dns=false', '--timeout=5s', '--advertise-tags=tag:web'],
  ['logout'],
  ['serve', 'reset'],
];
const DAEMON_CASES: string[][] = [
  ['--statedir=/tmp/x', '--nope'],
  ['--statedir=/tmp/x', '--socket=/tmp/x.sock', '--tun=t0', '--port=abc'],
  ['--statedir=/tmp/x', '--socket=/tmp/x.sock', '--tun=t0', '--port=1.2.3.4:41641'],
  ['--statedir=/tmp/x', '--socket=/tmp/x.sock', '--tun=t0', '--port=70000'],
  ['--statedir=/tmp/x', '--socket=/tmp/x.sock', '--tun=t0', '--port=1', 'extra'],
];

describe(`the double answers as the real Tailscale ${SUPPORTED_TAILSCALE} does`, () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('the real binaries are there (make test provisions them first)', () => {
    assert.ok(existsSync(join(REAL, 'tailscale')) && existsSync(join(REAL, 'tailscaled')), `${REAL}: run scripts/build-tailscale.sh`);
  });

  it('tailscale without a daemon: the same exit code and first line of stderr for every case', async () => {
    const diffs: string[] = [];
    for (const args of CLI_CASES) {
      const argv = [`--socket=${nowhere}`, ...args];
      const [d, r] = await Promise.all([run(join(DOUBLE, 'tailscale'), argv), run(join(REAL, 'tailscale'), argv)]);
      if (d.code !== r.code || normal(d.stderr) !== normal(r.stderr)) {
        diffs.push(`tailscale ${args.join(' ')}\n    real:   ${r.code} ${normal(r.stderr)}\n    double: ${d.code} ${normal(d.stderr)}`);
      }
    }
    assert.deepEqual(diffs, []);
  });

  it('tailscaled: the same refusal of bad flags and arguments', async () => {
    const diffs: string[] = [];
    for (const args of DAEMON_CASES) {
      const [d, r] = await Promise.all([run(join(DOUBLE, 'tailscaled'), args), run(join(REAL, 'tailscaled'), args)]);
      if (d.code !== r.code || normal(d.stderr) !== normal(r.stderr)) {
        diffs.push(`tailscaled ${args.join(' ')}\n    real:   ${r.code} ${normal(r.stderr)}\n    double: ${d.code} ${normal(d.stderr)}`);
      }
    }
    assert.deepEqual(diffs, []);
  });

  it('with some tailscaled running elsewhere, an unreachable socket is reported the same way (the CLI names that process)', { skip: process.getuid?.() !== 0 ? 'needs root' : false }, async () => {
    const d = mkdtempSync(join(dir, 'other-'));
    const other = spawn('unshare', ['-n', '--', join(REAL, 'tailscaled'), `--statedir=${d}`, `--socket=${join(d, 's')}`, '--tun=userspace-networking', '--no-logs-no-support'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 500));
      const diffs: string[] = [];
      for (const args of [['status', '--json'], ['up', '--reset', '--hostname=web', '--accept-dns=false', '--timeout=5s', '--advertise-tags=']]) {
        const argv = [`--socket=${nowhere}`, ...args];
        const [db, r] = await Promise.all([run(join(DOUBLE, 'tailscale'), argv), run(join(REAL, 'tailscale'), argv)]);
        assert.match(r.stderr, /which appears to be running as tailscaled/, 'the real CLI saw the other daemon');
        if (db.code !== r.code || normal(db.stderr) !== normal(r.stderr)) diffs.push(`${args[0]}\n    real:   ${r.code} ${normal(r.stderr)}\n    double: ${db.code} ${normal(db.stderr)}`);
      }
      assert.deepEqual(diffs, []);
    } finally {
      other.kill('SIGKILL');
      await new Promise((r) => other.once('exit', r));
    }
  });

  it('with a daemon on a fresh state: the same BackendState and HaveNodeKey before a login, and serve and serve reset refused alike', { skip: process.getuid?.() !== 0 ? 'needs root' : false }, async () => {
    // Both daemons, each in a network namespace of its own, on a state that never logged in.
    const shapes: Record<string, unknown>[] = [];
    for (const bin of [join(DOUBLE, 'tailscaled'), join(REAL, 'tailscaled')]) {
      const d = mkdtempSync(join(dir, 'd-'));
      const socket = join(d, 'ts.sock');
      const child: ChildProcess = spawn('unshare', ['-n', '--', bin, `--statedir=${d}`, `--socket=${socket}`, '--tun=userspace-networking', '--port=41641', '--no-logs-no-support'].filter((a) => !(bin.startsWith(DOUBLE) && a === '--no-logs-no-support')), { stdio: 'ignore' });
      try {
        const cli = bin.startsWith(DOUBLE) ? join(DOUBLE, 'tailscale') : join(REAL, 'tailscale');
        let st: Run = { code: 1, stdout: '', stderr: '' };
        for (let i = 0; i < 100 && st.code !== 0; i++) {
          await new Promise((r) => setTimeout(r, 100));
          st = await run(cli, [`--socket=${socket}`, 'status', '--json']);
        }
        assert.equal(st.code, 0, st.stderr);
        const j = JSON.parse(st.stdout) as Record<string, unknown>;
        // Serving needs a node that is Running or Starting; a reset fails before the first netmap.
        const serve = await run(cli, [`--socket=${socket}`, 'serve', '--bg', '--tcp=5432', 'tcp://127.0.0.1:5432']);
        const reset = await run(cli, [`--socket=${socket}`, 'serve', 'reset']);
        shapes.push({
          BackendState: j['BackendState'], HaveNodeKey: j['HaveNodeKey'] ?? false,
          serve: `${serve.code} ${normal(serve.stderr)}`, reset: `${reset.code} ${normal(reset.stderr)}`,
        });
      } finally {
        child.kill('SIGKILL');
      }
    }
    assert.deepEqual(shapes[0], shapes[1], 'double vs real: status of a never-logged-in node');
  });
});
