import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  DOUBLE_DIR, ENGINE, IMAGE, PluginProcess, docker, e2eSkipReason, mustDocker, restartEngine, tailscaledProcesses, uniq, waitFor, identityDir
} from './harness.js';

const skip = await e2eSkipReason();

/**
 * What the user gets from a burst: the hostname each node's `tailscale up` was really given (the
 * test double's record), one tailscaled per container, and state directories named only for
 * the labels. Docker's network snapshot lists a joining endpoint under a placeholder key
 * (`ep-<id>`) before its container, which once started nodes under hex names.
 */
describe(`binding endpoints to containers on Docker ${ENGINE}`, { skip }, () => {
  const plugin = new PluginProcess(undefined, { TS_PATH: DOUBLE_DIR, TSLINK_STATUS_POLL_MS: '30000' });
  const net = uniq('tsbind');
  const containers: string[] = [];
  const byHostname = (): string[] => (existsSync(join(plugin.dataDir, 'identities', net)) ? readdirSync(join(plugin.dataDir, 'identities', net)).sort() : []);
  const ups = (hostname: string): string[] => {
    const f = join(identityDir(plugin.dataDir, net, hostname), 'double-calls.jsonl');
    if (!existsSync(f)) return [];
    return readFileSync(f, 'utf8').split('\n').filter(Boolean)
      .map((l) => (JSON.parse(l) as { argv: string[] }).argv)
      .filter((a) => a.includes('up'))
      .map((a) => a.join(' '));
  };
  const status = (endpointId: string): { state?: string; hostname?: string } | undefined => {
    const f = join(plugin.dataDir, 'status', `${endpointId}.json`);
    return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as { state?: string; hostname?: string }) : undefined;
  };
  const logLines = (): { msg: string; endpoint?: string }[] =>
    plugin.log().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; endpoint?: string });
  const endpointOf = async (name: string): Promise<string> =>
    mustDocker('inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").EndpointID}}`, name);

  before(async () => {
    await plugin.start();
    await mustDocker('network', 'create', '-d', 'tslink', net);
  });
  after(async () => {
    if (containers.length) await docker('rm', '-f', ...containers);
    await docker('network', 'rm', net);
    await plugin.kill('SIGTERM');
  });

  it('starts every node of a 50-container burst under its own label, five times in a row', async () => {
    const hosts = Array.from({ length: 50 }, (_, i) => `burst-${i}`);
    for (let round = 0; round < 5; round++) {
      const upsBefore = new Map(hosts.map((h) => [h, ups(h).length]));
      const names = hosts.map((h) => uniq(`${h}-r${round}`));
      containers.push(...names);
      const results = await Promise.all(
        names.map((n, i) => docker('run', '-d', '--name', n, '--network', net, '--label', `tslink.hostname=${hosts[i]}`, '--label', 'tslink.tags=tag:burst', IMAGE, 'sleep', '600')),
      );
      for (const r of results) assert.equal(r.code, 0, r.stderr);
      const endpoints = await Promise.all(names.map(endpointOf));
      // A correctness bound, not a timing goal: the burst's timings are in bench/.
      await waitFor(`round ${round}: 50 nodes running`, async () => endpoints.every((e) => status(e)?.state === 'running'), 120_000, 250);
      endpoints.forEach((e, i) => assert.equal(status(e)?.hostname, hosts[i], `round ${round}: ${names[i]}'s node has its own hostname`));
      for (const h of hosts) {
        const fresh = ups(h).slice(upsBefore.get(h));
        assert.equal(fresh.length, 1, `round ${round}: one \`tailscale up\` for ${h}: ${fresh.join(' | ')}`);
        assert.match(fresh[0]!, new RegExp(`--hostname=${h}( |$)`), `round ${round}: tailscale up was given ${h}`);
      }
      assert.deepEqual(byHostname(), [...hosts].sort(), `round ${round}: the network's identities are exactly the 50 label hostnames`);
      assert.equal((await tailscaledProcesses(plugin.dataDir)).length, 50, `round ${round}: one tailscaled per container`);
      const lines = logLines();
      for (const e of endpoints) {
        assert.equal(lines.filter((l) => l.msg === 'endpoint bound' && l.endpoint === e.slice(0, 12)).length, 1, `round ${round}: endpoint ${e.slice(0, 12)} bound exactly once`);
      }
      assert.deepEqual(lines.filter((l) => l.msg.includes('BUG')), [], 'no conflicting bindings');
      await mustDocker('rm', '-f', ...names);
      containers.splice(0);
      await waitFor(`round ${round}: every tailscaled stopped`, async () => (await tailscaledProcesses(plugin.dataDir)).length === 0, 60_000, 250);
    }
  });

  it('gives a container joined with `docker network connect` its own node while another sits created on the network', async () => {
    const stale = uniq('stale');
    const live = uniq('connected');
    containers.push(stale, live);
    await mustDocker('create', '--name', stale, '--network', net, '--label', 'tslink.hostname=stale-one', IMAGE, 'sleep', '600');
    await mustDocker('run', '-d', '--name', live, '--label', 'tslink.hostname=connected-one', IMAGE, 'sleep', '600');
    await mustDocker('network', 'connect', net, live);
    const ep = await endpointOf(live);
    await waitFor('connected node running', async () => status(ep)?.state === 'running', 30_000, 100);
    assert.equal(status(ep)?.hostname, 'connected-one');
    assert.match(ups('connected-one').at(-1) ?? '', /--hostname=connected-one( |$)/);
    assert.ok(!byHostname().includes('stale-one'), 'the created, unstarted container got no node');
    await mustDocker('rm', '-f', stale, live);
    containers.splice(0);
  });

  it('fails docker run with the grammar message when the labels are invalid', async () => {
    const name = uniq('bad');
    containers.push(name);
    const r = await docker('run', '-d', '--name', name, '--network', net, '--label', 'tslink.serve.443=htps:80', IMAGE, 'sleep', '600');
    assert.equal(r.code, 125, r.stdout + r.stderr);
    assert.match(r.stderr, /tslink: label tslink\.serve\.443="htps:80": "htps" is not a protocol; use one of http, https, tcp, tls-terminated-tcp, tun/);
    const state = await mustDocker('inspect', '-f', '{{.State.Status}}', name);
    assert.equal(state, 'created', 'the container did not start half-configured');
    const untagged = uniq('untagged');
    containers.push(untagged);
    const u = await docker('run', '-d', '--name', untagged, '--network', net, '--label', 'tslink.service=svc:web', '--label', 'tslink.serve.443=https:8080', IMAGE, 'sleep', '600');
    assert.equal(u.code, 125, u.stdout + u.stderr);
    assert.match(u.stderr, /a Tailscale Service host must be a tagged node/);
  });

  it('reconnects after dockerd restarts and binds containers started right after', async () => {
    const opens = (): number => logLines().filter((l) => l.msg === 'docker events stream open').length;
    await waitFor('watcher connected', async () => opens() > 0);
    const before = opens();
    await restartEngine();
    const name = uniq('after-restart');
    containers.push(name);
    // The network and the plugin's records survived; the daemon finds the plugin again by its socket.
    await waitFor('docker answers', async () => (await docker('version')).code === 0 || undefined, 60_000, 250);
    await mustDocker('run', '-d', '--name', name, '--network', net, '--label', 'tslink.hostname=after-restart', IMAGE, 'sleep', '600');
    await waitFor('events stream reopened', async () => opens() > before, 30_000, 100);
    const ep = await endpointOf(name);
    await waitFor('node after restart', async () => status(ep)?.state === 'running', 30_000, 100);
    assert.equal(status(ep)?.hostname, 'after-restart');
    assert.match(ups('after-restart').at(-1) ?? '', /--hostname=after-restart( |$)/);
  });
});
