/**
 * The test double never ships: a product bundle has none, a bundle with one cannot be pushed,
 * and a plugin that finds the double says so at start. Builds real bundles (root, no Docker).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, DOUBLE_DIR, ROOT, sh, sleep } from '../e2e/harness.js';

const tmp = mkdtempSync(join(tmpdir(), 'tslink-packaging-'));
const marker = (bundle: string): string => join(bundle, 'rootfs/usr/lib/tslink/tailscale/THIS-IS-A-TEST-DOUBLE');

describe('the test double never ships', () => {
  after(() => rmSync(tmp, { recursive: true, force: true }));

  for (const value of ['0', 'no', '']) {
    it(`make rootfs TEST_DOUBLE=${JSON.stringify(value)} bundles no double`, async () => {
      const bundle = join(tmp, `product-${value || 'empty'}`);
      const r = await sh('make', ['-s', '-C', ROOT, '-o', 'build', 'rootfs', `TEST_DOUBLE=${value}`, `BUNDLE=${bundle}`], { timeoutMs: 300_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(existsSync(join(bundle, 'rootfs/opt/tslink/src/cli.js')), 'a real bundle was built');
      assert.ok(!existsSync(marker(bundle)), 'no double marker');
      const check = await sh(join(ROOT, 'scripts/check-bundle.sh'), [bundle]);
      assert.equal(check.code, 0, check.stderr);
      // Later cases reuse one bundle: building costs ~20 s each.
      if (value !== '0') rmSync(bundle, { recursive: true, force: true });
    });
  }

  it('make push refuses a bundle that carries the double, before anything is created or pushed', async () => {
    const bundle = join(tmp, 'double');
    const r = await sh('make', ['-s', '-C', ROOT, '-o', 'build', 'rootfs', 'TEST_DOUBLE=1', `BUNDLE=${bundle}`], { timeoutMs: 300_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(marker(bundle)));
    // -o rootfs: push the bundle just built, as a release would after `make rootfs`.
    const push = await sh('make', ['-s', '-C', ROOT, '-o', 'rootfs', 'push', `BUNDLE=${bundle}`, 'REGISTRY=127.0.0.1:1']);
    assert.notEqual(push.code, 0);
    assert.match(push.stderr, /TEST DOUBLE; refusing/);
    assert.doesNotMatch(push.stdout + push.stderr, /docker plugin create/);
    // The mark inside the files is found even without the marker file.
    rmSync(marker(bundle));
    assert.equal((await sh(join(ROOT, 'scripts/check-bundle.sh'), [bundle])).code, 1);
  });

  it('a plugin whose tailscale is the double logs an error line at start', async () => {
    const data = join(tmp, 'data');
    const socket = join(tmp, 'tslink.sock');
    const log = join(tmp, 'plugin.log');
    const child = (await import('node:child_process')).spawn('bash', ['-c', `exec "${process.execPath}" "${CLI}" serve >"${log}" 2>&1`], {
      env: { ...process.env, TS_DATA_DIR: data, TSLINK_SOCKET: socket, TS_PATH: DOUBLE_DIR, DOCKER_SOCKET: join(tmp, 'no-docker.sock') },
    });
    try {
      const deadline = Date.now() + 15_000;
      while (!readFileSync(log, { encoding: 'utf8', flag: 'a+' }).includes('"tslink serving"') && Date.now() < deadline) await sleep(50);
      const lines = readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: string; msg: string });
      assert.ok(lines.some((l) => l.msg === 'tslink serving'), 'the plugin started');
      assert.ok(lines.some((l) => l.level === 'error' && /TEST DOUBLE, not Tailscale/.test(l.msg)), lines.map((l) => l.msg).join('\n'));
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });
});
