import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { EndpointRecord } from '../../src/state/store.js';
import { ENGINE, IMAGE, PluginProcess, docker, e2eSkipReason, mustDocker, restartEngine, startEvents, uniq, waitFor, percentile } from './harness.js';

const skip = await e2eSkipReason();

describe(`binding endpoints to containers on Docker ${ENGINE}`, { skip }, () => {
  const plugin = new PluginProcess();
  const net = uniq('tsbind');
  const containers: string[] = [];

  before(async () => {
    await plugin.start();
    await mustDocker('network', 'create', '-d', 'tslink', net);
  });
  after(async () => {
    if (containers.length) await docker('rm', '-f', ...containers);
    await docker('network', 'rm', net);
    await plugin.kill('SIGTERM');
  });

  const record = (endpointId: string): EndpointRecord =>
    JSON.parse(readFileSync(join(plugin.dataDir, 'endpoints', `${endpointId}.json`), 'utf8')) as EndpointRecord;

  async function inspect(name: string): Promise<{ id: string; endpointId: string; startedAt: number }> {
    const out = await mustDocker('inspect', '-f', `{{.Id}} {{(index .NetworkSettings.Networks "${net}").EndpointID}} {{.State.StartedAt}}`, name);
    const [id = '', endpointId = '', startedAt = ''] = out.split(' ');
    return { id, endpointId, startedAt: Date.parse(startedAt) };
  }

  it('binds a burst of 50 labelled containers plus 5 network-connects, each to its own configuration within 2 s', async () => {
    const t0 = Math.floor(Date.now() / 1000) - 1;
    const burst = Array.from({ length: 50 }, (_, i) => ({ name: uniq(`burst${i}`), host: `burst-host-${i}` }));
    containers.push(...burst.map((b) => b.name));
    const results = await Promise.all(
      burst.map((b) => docker('run', '-d', '--name', b.name, '--network', net, '--label', `tslink.hostname=${b.host}`, '--label', 'tslink.tags=tag:burst', IMAGE, 'sleep', '600')),
    );
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    const late = Array.from({ length: 5 }, (_, i) => ({ name: uniq(`late${i}`), host: `late-host-${i}` }));
    containers.push(...late.map((b) => b.name));
    for (const l of late) await mustDocker('run', '-d', '--name', l.name, '--label', `tslink.hostname=${l.host}`, IMAGE, 'sleep', '600');
    const connectedAt = new Map<string, number>();
    await Promise.all(late.map(async (l) => {
      connectedAt.set(l.name, Date.now());
      await mustDocker('network', 'connect', net, l.name);
    }));

    // "Its start" is the container's start event: on 28.5 State.StartedAt is stamped before the
    // daemon even sets up networking, so under a burst it measures Docker's own queue.
    const starts = await startEvents(t0);
    const lags: number[] = [];
    const lagsFromStartedAt: number[] = [];
    for (const c of [...burst, ...late]) {
      const info = await inspect(c.name);
      const rec = await waitFor(`binding of ${c.name}`, async () => {
        const r = record(info.endpointId);
        return r.containerId ? r : undefined;
      }, 5000);
      assert.equal(rec.containerId, info.id, `${c.name} is bound to its own container`);
      assert.equal(rec.config?.hostname, c.host, `${c.name} got its own hostname`);
      assert.deepEqual(rec.config?.tags, c.name.includes('burst') ? ['tag:burst'] : []);
      const from = connectedAt.get(c.name) ?? starts.get(info.id);
      assert.ok(from, `start of ${c.name} known`);
      const lag = Date.parse(rec.boundAt ?? '') - from;
      lags.push(lag);
      if (!connectedAt.has(c.name)) lagsFromStartedAt.push(Date.parse(rec.boundAt ?? '') - info.startedAt);
      assert.ok(lag <= 2000, `${c.name} bound ${lag} ms after its start`);
    }
    const vias: Record<string, number> = {};
    for (const f of readdirSync(join(plugin.dataDir, 'endpoints'))) {
      const v = (JSON.parse(readFileSync(join(plugin.dataDir, 'endpoints', f), 'utf8')) as EndpointRecord).boundVia ?? 'none';
      vias[v] = (vias[v] ?? 0) + 1;
    }
    const hostnames = new Set([...burst, ...late].map((c) => c.host));
    assert.equal(hostnames.size, 55);
    const ready = plugin.log().split('\n').filter((l) => l.includes('"endpoint ready for tailscale"')).map((l) => (JSON.parse(l) as { sinceJoinMs: number }).sinceJoinMs);
    process.stdout.write(`# METRIC engine=${ENGINE} bind-lag-ms p50=${percentile(lags, 50)} max=${Math.max(...lags)} vs-StartedAt p50=${percentile(lagsFromStartedAt, 50)} max=${Math.max(...lagsFromStartedAt)} via=${JSON.stringify(vias)} join-to-ready-ms n=${ready.length} p50=${percentile(ready, 50)} p99=${percentile(ready, 99)}\n`);
    await mustDocker('rm', '-f', ...containers.splice(0));
  });

  it('fails docker run with the grammar message when the labels are invalid', async () => {
    const name = uniq('bad');
    containers.push(name);
    const r = await docker('run', '-d', '--name', name, '--network', net, '--label', 'tslink.serve.443=htps:80', IMAGE, 'sleep', '600');
    assert.equal(r.code, 125, r.stdout + r.stderr);
    assert.match(r.stderr, /tslink: label tslink\.serve\.443="htps:80": "htps" is not a protocol; use one of http, https, tcp, tls-terminated-tcp, tun/);
    const state = await mustDocker('inspect', '-f', '{{.State.Status}}', name);
    assert.equal(state, 'created', 'the container did not start half-configured');
  });

  it('reconnects after dockerd restarts and binds containers started right after', async () => {
    const before = (await waitFor('watcher connected', async () => plugin.log().includes('docker events stream open') || undefined)) && plugin.log().split('docker events stream open').length;
    await restartEngine();
    const name = uniq('after-restart');
    containers.push(name);
    // The network and the plugin's records survived; the daemon finds the plugin again by its socket.
    await waitFor('docker answers', async () => (await docker('version')).code === 0 || undefined, 60_000, 250);
    await mustDocker('run', '-d', '--name', name, '--network', net, '--label', 'tslink.hostname=after-restart', IMAGE, 'sleep', '600');
    await waitFor('events stream reopened', async () => plugin.log().split('docker events stream open').length > before || undefined, 30_000, 100);
    const info = await inspect(name);
    const rec = await waitFor('binding after restart', async () => {
      const r = record(info.endpointId);
      return r.containerId ? r : undefined;
    }, 5000);
    assert.equal(rec.containerId, info.id);
    assert.equal(rec.config?.hostname, 'after-restart');
  });
});
