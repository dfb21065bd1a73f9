/**
 * Churn without residue (issue 14): 2 × 100 labelled containers, started 10 at a time and then
 * removed 10 at a time. Afterwards Docker must be able to remove the network (it once said "has
 * active endpoints" with no container left), and nothing of tslink may remain: links, routes,
 * rules, tailscaled processes, runtime sockets, status files, records.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DOUBLE_DIR, ENGINE, IMAGE, PluginProcess, docker, e2eSkipReason, mustDocker, tailscaledProcesses, tslinkHostObjects, uniq, waitFor } from './harness.js';

const skip = await e2eSkipReason();

describe(`churn of 2 × 100 containers on Docker ${ENGINE}`, { skip }, () => {
  const plugin = new PluginProcess(undefined, { TS_PATH: DOUBLE_DIR, TSLINK_STATUS_POLL_MS: '30000' });
  const net = uniq('tschurn');
  let netRemoved = false;

  before(async () => {
    await plugin.start();
    await mustDocker('network', 'create', '-d', 'tslink', net);
  });
  after(async () => {
    if (!netRemoved) await docker('network', 'rm', net);
    await plugin.kill('SIGTERM');
  });

  it('runs and removes 2 × 100 containers 10 at a time, then removes the network, leaving nothing', async () => {
    for (let round = 0; round < 2; round++) {
      const names = Array.from({ length: 100 }, (_, i) => `${uniq(`churn${round}`)}-${i}`);
      for (let i = 0; i < names.length; i += 10) {
        const batch = names.slice(i, i + 10);
        const rs = await Promise.all(batch.map((c) => docker('run', '-d', '--name', c, '--network', net, '--label', `tslink.hostname=${c}`, IMAGE, 'sleep', '3600')));
        rs.forEach((r, j) => assert.equal(r.code, 0, `${batch[j]}: ${r.stderr}`));
      }
      for (let i = 0; i < names.length; i += 10) {
        const r = await docker('rm', '-f', ...names.slice(i, i + 10));
        assert.equal(r.code, 0, r.stderr);
      }
    }
    const rm = await docker('network', 'rm', net);
    assert.equal(rm.code, 0, `docker network rm: ${rm.stderr}`);
    netRemoved = true;
    await waitFor('no tailscaled left', async () => (await tailscaledProcesses(plugin.dataDir)).length === 0, 30_000, 200);
    assert.deepEqual(await tslinkHostObjects(), [], 'no link, route or rule');
    for (const dir of ['endpoints', 'networks', 'run', 'status']) {
      const left = existsSync(join(plugin.dataDir, dir)) ? readdirSync(join(plugin.dataDir, dir)) : [];
      assert.deepEqual(left, [], `${dir}/ is empty`);
    }
    assert.ok(!existsSync(join(plugin.dataDir, 'tslink.sock')));
    // Engines before 28.1 miscount endpoints deleted at once (src/docker/engine-quirks.ts): the
    // plugin found out which engine this is and spaces its DeleteEndpoint replies on 20.10 only.
    const spaced = plugin.log().includes('DeleteEndpoint replies are spaced');
    assert.equal(spaced, ENGINE === '20.10', `DeleteEndpoint replies spaced on ${ENGINE}: ${spaced}`);
  });
});
