/**
 * Survive every restart with nothing stray (issue 13), with the plugin as a legacy plugin: a
 * kill -9 with 50 containers running, a kill -9 in the middle of a burst, a container removed
 * while the plugin is down, dockerd restarts with and without live-restore, and a simulated
 * host reboot. Each asserts what the user has: the same Tailscale IP per hostname, exactly one
 * tailscaled per running container, and nothing left once the network is removed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { recordDaemon } from '../../src/node/daemon-ownership.js';
import { join } from 'node:path';
import {
  clearKernelState, DOUBLE_DIR, ENGINE, IMAGE, PluginProcess, ROOT, docker, e2eSkipReason, mustDocker, restartEngine, sh, tailscaleAddress,
  tailscaledProcesses, tslinkHostObjects, uniq, waitFor, identityDir
} from './harness.js';

const skip = await e2eSkipReason();

describe(`restarts and recovery on Docker ${ENGINE}`, { skip }, () => {
  const plugin = new PluginProcess(undefined, { TS_PATH: DOUBLE_DIR, TSLINK_STATUS_POLL_MS: '30000' });
  const net = uniq('tsrestart');
  const containers = new Set<string>();

  /** Runs labelled containers (concurrently); answers their names. */
  async function runMany(prefix: string, n: number, extra: string[] = []): Promise<string[]> {
    const names = Array.from({ length: n }, (_, i) => `${uniq(prefix)}-${i}`);
    names.forEach((c) => containers.add(c));
    const rs = await Promise.all(names.map((c) => docker('run', '-d', '--name', c, '--network', net, '--label', `tslink.hostname=${c}`, ...extra, IMAGE, 'sleep', '3600')));
    rs.forEach((r, i) => assert.equal(r.code, 0, `${names[i]}: ${r.stderr}`));
    return names;
  }

  /** Hostname → the Tailscale address inside its container (what the tailnet sees). */
  async function identities(names: readonly string[], timeoutMs = 60_000): Promise<Map<string, string>> {
    const ips = new Map<string, string>();
    await waitFor(`${names.length} nodes with their tailscale0 address`, async () => {
      for (const c of names) {
        if (ips.has(c)) continue;
        const pid = (await docker('inspect', '-f', '{{.State.Pid}}', c)).stdout.trim();
        const ip = pid && pid !== '0' ? await tailscaleAddress(pid) : undefined;
        if (ip) ips.set(c, ip);
      }
      return ips.size === names.length;
    }, timeoutMs, 250);
    return ips;
  }

  async function runningContainers(): Promise<number> {
    const out = await mustDocker('ps', '-q', '--filter', `network=${net}`);
    return out ? out.split('\n').length : 0;
  }

  async function assertOneDaemonPerContainer(what: string): Promise<void> {
    const want = await runningContainers();
    await waitFor(`${what}: ${want} tailscaled`, async () => (await tailscaledProcesses(plugin.dataDir)).length === want, 30_000, 250);
  }

  async function removeAll(): Promise<void> {
    if (containers.size) await docker('rm', '-f', ...containers);
    containers.clear();
  }

  before(async () => {
    await plugin.start();
    await mustDocker('network', 'create', '-d', 'tslink', net);
  });
  after(async () => {
    await removeAll();
    await docker('network', 'rm', net);
    await plugin.kill('SIGTERM');
  });

  it('kill -9 with 50 containers running: every node comes back with its identity, one tailscaled each', async () => {
    const names = await runMany('k9', 50);
    const before = await identities(names);
    await assertOneDaemonPerContainer('before');
    await plugin.kill('SIGKILL');
    // The daemons die with the plugin process that started them (parent-death signal).
    await waitFor('no tailscaled outlives the plugin', async () => (await tailscaledProcesses(plugin.dataDir)).length === 0, 15_000, 100);
    await plugin.start();
    const after = await identities(names);
    assert.deepEqual(after, before, 'same Tailscale IP per hostname');
    await assertOneDaemonPerContainer('after');
    await removeAll();
  });

  it('kill -9 in the middle of a burst of 20 starts: what started has its node, nothing is stray', async () => {
    const names = Array.from({ length: 20 }, (_, i) => `${uniq('mid')}-${i}`);
    names.forEach((c) => containers.add(c));
    const runs = Promise.all(names.map((c) => docker('run', '-d', '--name', c, '--network', net, '--label', `tslink.hostname=${c}`, IMAGE, 'sleep', '3600')));
    await waitFor('some joins done', async () => plugin.log().split('"endpoint joined"').length > 3, 30_000, 10);
    await plugin.kill('SIGKILL');
    await plugin.start();
    await runs;
    // Docker may have failed some starts while the plugin was away; those that run get nodes.
    const running = (await mustDocker('ps', '--filter', `network=${net}`, '--format', '{{.Names}}')).split('\n').filter(Boolean);
    assert.ok(running.length > 0, 'some containers run');
    await identities(running);
    await assertOneDaemonPerContainer('after the burst');
    await removeAll();
  });

  it('tailscaled that outlived their plugin (no parent-death signal) are stopped: before their node starts again, or as strays', async () => {
    const [keep] = await runMany('orphan', 1);
    const before = await identities([keep!]);
    // A container outside tslink lends its namespace to a daemon of a node no endpoint uses.
    const lender = uniq('lender');
    containers.add(lender);
    await mustDocker('run', '-d', '--name', lender, '--network', 'none', IMAGE, 'sleep', '3600');
    await plugin.kill('SIGKILL');
    await waitFor('no tailscaled outlives the plugin', async () => (await tailscaledProcesses(plugin.dataDir)).length === 0, 15_000, 100);
    // What an older plugin without the parent-death signal would leave: daemons in their own
    // session, whose parent is gone.
    const orphan = async (container: string, hostname: string): Promise<number> => {
      const pid = await mustDocker('inspect', '-f', '{{.State.Pid}}', container);
      const dir = join(plugin.dataDir, 'run', `orphan-${hostname}`);
      mkdirSync(dir, { recursive: true });
      const stateDir = identityDir(plugin.dataDir, net, hostname);
      mkdirSync(stateDir, { recursive: true });
      const child = spawn('nsenter', [`--net=/proc/${pid}/ns/net`, join(DOUBLE_DIR, 'tailscaled'), `--statedir=${stateDir}`, `--socket=${join(dir, 'ts.sock')}`, '--tun=tailscale0', '--port=41641'], { detached: true, stdio: 'ignore' });
      child.unref();
      // As tslink records every daemon it starts: the proof that lets a later tslink stop it.
      await recordDaemon(stateDir, child.pid!);
      return child.pid!;
    };
    const left = [await orphan(keep!, keep!), await orphan(lender, uniq('stray'))];
    await waitFor('both leftovers run', async () => (await tailscaledProcesses(plugin.dataDir)).length === 2, 15_000, 100);
    // Decoys that are not tslink's (issue 22): a user's tailscaled elsewhere, and one on a state
    // directory under the data dir that tslink never recorded starting. Both must survive.
    const decoyDir = mkdtempSync(join(tmpdir(), 'tslink-decoy-'));
    const decoys = [join(decoyDir, 'elsewhere'), identityDir(plugin.dataDir, net, uniq('unrecorded'))].map((stateDir, i) => {
      mkdirSync(stateDir, { recursive: true });
      const c = spawn('unshare', ['-n', '--', process.execPath, join(DOUBLE_DIR, 'tailscaled'), `--statedir=${stateDir}`, `--socket=${join(decoyDir, `d${i}.sock`)}`, '--tun=tailscale0', '--port=41641'], { detached: true, stdio: 'ignore' });
      c.unref();
      return c;
    });
    await plugin.start();
    assert.deepEqual(await identities([keep!]), before, 'the node came back with its identity');
    await waitFor('both leftovers stopped', async () => left.every((p) => !existsSync(`/proc/${p}`) || readFileSync(`/proc/${p}/stat`, 'utf8').includes(') Z ')), 30_000, 200);
    for (const d of decoys) assert.ok(d.exitCode === null && d.signalCode === null && existsSync(`/proc/${d.pid}`), `the decoy ${d.pid} is alive after the start`);
    for (const d of decoys) d.kill('SIGKILL');
    await waitFor('decoys gone', async () => decoys.every((d) => d.exitCode !== null || d.signalCode !== null), 10_000, 50);
    await assertOneDaemonPerContainer('after');
    const found = plugin.log().split('\n').filter((l) => l.includes('found tailscaled left by an earlier plugin process')).at(-1);
    assert.equal((JSON.parse(found ?? '{}') as { count?: number }).count, 2, 'the start found both leftovers in its one scan');
    await removeAll();
  });

  it('a container removed while the plugin is down leaves no node, record or link after it comes back', async () => {
    const [keep, gone] = await runMany('down', 2);
    const before = await identities([keep!, gone!]);
    const goneEp = await mustDocker('inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").EndpointID}}`, gone!);
    await plugin.kill('SIGKILL');
    await docker('rm', '-f', gone!);
    containers.delete(gone!);
    await plugin.start();
    assert.deepEqual(await identities([keep!]), new Map([[keep!, before.get(keep!)!]]));
    await waitFor('the removed container\'s endpoint is cleaned up', async () => !existsSync(join(plugin.dataDir, 'endpoints', `${goneEp}.json`)), 30_000, 200);
    await assertOneDaemonPerContainer('after');
    const links = await tslinkHostObjects();
    assert.ok(!links.some((l) => l.includes(goneEp.slice(0, 12))), `no link of the removed container: ${links.join(', ')}`);
    await removeAll();
  });

  for (const liveRestore of [false, true]) {
    it(`dockerd restart ${liveRestore ? 'with' : 'without'} --live-restore keeps every identity`, async () => {
      const names = await runMany(liveRestore ? 'lr' : 'nolr', 3, ['--restart', 'always']);
      // Live-restore must be on in the daemon that goes down for containers to outlive it.
      if (liveRestore) {
        await restartEngine('--live-restore');
        await waitFor('containers running again', async () => (await runningContainers()) === 3, 60_000, 250);
      }
      const before = await identities(names);
      const daemonsBefore = (await tailscaledProcesses(plugin.dataDir)).sort();
      await restartEngine(liveRestore ? '--live-restore' : '');
      await waitFor('containers running again', async () => (await runningContainers()) === 3, 60_000, 250);
      assert.deepEqual(await identities(names), before, 'same Tailscale IP per hostname');
      await assertOneDaemonPerContainer('after the restart');
      if (liveRestore) assert.deepEqual((await tailscaledProcesses(plugin.dataDir)).sort(), daemonsBefore, 'the very same tailscaled kept running');
      await removeAll();
      if (liveRestore) await restartEngine();
    });
  }

  it('a simulated host reboot brings restart-policy containers back with their identities and cleans stale records', async () => {
    const names = await runMany('boot', 3, ['--restart', 'always']);
    const before = await identities(names);
    const staleEps = readdirSync(join(plugin.dataDir, 'endpoints'));
    // Power off: dockerd down, the plugin and every tailscaled gone, and with them every link,
    // route and rule (a reboot clears the kernel's state; the disk keeps the records).
    await sh(join(ROOT, 'scripts/engine.sh'), ['stop']);
    await plugin.kill('SIGKILL');
    for (const pid of await tailscaledProcesses(plugin.dataDir)) process.kill(pid, 'SIGKILL');
    await clearKernelState();
    assert.deepEqual(await tslinkHostObjects(), [], 'the "reboot" left nothing');
    // Power on: dockerd and the legacy plugin start together, as a boot starts both units.
    // dockerd restores restart-policy containers before it serves its API, and waits for the
    // plugin's socket meanwhile, so the plugin must not wait for the API (it does not).
    const engine = sh(join(ROOT, 'scripts/engine.sh'), ['start', ENGINE], { timeoutMs: 180_000 });
    await plugin.start();
    assert.equal((await engine).code, 0, 'dockerd started');
    await waitFor('containers running again', async () => (await runningContainers()) === 3, 90_000, 250);
    assert.deepEqual(await identities(names, 90_000), before, 'same Tailscale IP per hostname');
    await assertOneDaemonPerContainer('after the reboot');
    await waitFor('stale endpoint records cleaned', async () => staleEps.every((f) => !existsSync(join(plugin.dataDir, 'endpoints', f))), 30_000, 250);
    await removeAll();
  });

  it('leaves nothing once the containers and the network are removed', async () => {
    await removeAll();
    await mustDocker('network', 'rm', net);
    await waitFor('no tailscaled', async () => (await tailscaledProcesses(plugin.dataDir)).length === 0, 15_000, 100);
    assert.deepEqual(await tslinkHostObjects(), []);
    for (const dir of ['endpoints', 'networks', 'run', 'status']) {
      const left = existsSync(join(plugin.dataDir, dir)) ? readdirSync(join(plugin.dataDir, dir)) : [];
      assert.deepEqual(left, [], `${dir}/ is empty`);
    }
    await mustDocker('network', 'create', '-d', 'tslink', net); // for after()
  });
});
