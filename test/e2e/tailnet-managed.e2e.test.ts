/**
 * The managed plugin, installed from a registry with the real Tailscale it bundles, on a real
 * tailnet (issue 21): an upgrade and a simulated host reboot, each with the network's key deleted
 * in control beforehand. What a user gets is read from control (the same nodes, no new one) and
 * from a peer (packets still pass), and from the host (one tailscaled per container).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ENGINE, IMAGE, ROOT, clearKernelState, docker, e2eSkipReason, mustDocker, sh, startRegistry, uniq, waitFor,
} from './harness.js';
import { BASE_DOMAIN, CONTROL_URL, Headscale, TAILSCALED_ENV, nodeCli, type HsNode } from './tailnet.js';
import { SUPPORTED_TAILSCALE } from '../../src/config/tailscale-features.js';

const skip = await e2eSkipReason();
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const ALIAS = 'tslreal';
const DRIVER = `${ALIAS}:latest`;

/** tailscaled processes running on state inside a managed plugin (its /data), seen from the host. */
async function managedDaemons(): Promise<number> {
  const r = await sh('pgrep', ['-f', 'tailscaled .*--statedir=/data/']);
  return r.stdout.split('\n').filter(Boolean).length;
}

async function removePlugin(name: string): Promise<void> {
  await docker('plugin', 'disable', '-f', name);
  await docker('plugin', 'rm', '-f', name);
}

describe(`the managed plugin with real Tailscale ${SUPPORTED_TAILSCALE} on a real tailnet, Docker ${ENGINE}: upgrade and reboot with the key gone`, { skip }, () => {
  const hs = new Headscale();
  const data = mkdtempSync(join(tmpdir(), 'tslink-managed-real-'));
  const net = uniq('tsmreal');
  const names = ['mreal-a', 'mreal-b', 'mreal-c'];
  let registry: Awaited<ReturnType<typeof startRegistry>> | undefined;
  let keyId = 0;
  const settings = [`TSLINK_TAILSCALED_ENV=${TAILSCALED_ENV}`, 'TSLINK_STATUS_POLL_MS=5000', `data.source=${data}`];

  async function endpointOf(c: string): Promise<string> {
    return mustDocker('inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").EndpointID}}`, c);
  }
  async function state(c: string): Promise<string | undefined> {
    const f = join(data, 'status', `${await endpointOf(c)}.json`);
    if (!existsSync(f)) return undefined;
    const s = JSON.parse(readFileSync(f, 'utf8')) as { state?: string; lastError?: string };
    if (s.state === 'failed' || s.state === 'logged-out') throw new Error(`${c}: ${s.state}: ${s.lastError}`);
    return s.state;
  }
  const allRunning = (what: string) =>
    waitFor(`${what}: every node running`, async () => ((await Promise.all(names.map(state))).every((s) => s === 'running') ? true : undefined), 120_000, 500);
  const controlView = async (): Promise<string[]> => (await hs.nodes()).map((n) => `${n.id} ${n.givenName} ${n.ipAddresses.join(',')}`).sort();
  const v4 = (n: HsNode): string => n.ipAddresses.find((a) => a.includes('.'))!;
  /**
   * a reaches c over the tailnet, asked of c's own node through a's: ping from inside the
   * container, by address, and by name (issue 24): c's MagicDNS name resolves to its address,
   * and its Docker name leads over the tailnet too.
   */
  async function reaches(from: string, to: string, what: string): Promise<void> {
    const peer = await hs.nodeNamed(to.replace('mreal-', 'real-'));
    for (const target of [v4(peer), to]) {
      await waitFor(`${what}: ${from} pings ${target} over the tailnet`, async () => {
        const r = await docker('exec', from, 'ping', '-c', '1', '-W', '2', target);
        return r.code === 0 || undefined;
      }, 30_000, 500);
    }
    const name = `${peer.givenName}.${BASE_DOMAIN}`;
    await waitFor(`${what}: ${name} resolves in ${from}`, async () => (await docker('exec', from, 'getent', 'ahostsv4', name)).stdout.startsWith(`${v4(peer)} `) || undefined, 30_000, 500);
  }

  before(async () => {
    await hs.start();
    const key = await hs.key({ reusable: true });
    keyId = key.id;
    registry = await startRegistry();
    // The bundle as `make rootfs` builds it: the real Tailscale, no double.
    const bundle = join(mkdtempSync(join(tmpdir(), 'tslink-real-bundle-')), 'bundle');
    const built = await sh(join(ROOT, 'scripts/build-rootfs.sh'), [bundle], { timeoutMs: 180_000 });
    assert.equal(built.code, 0, built.stderr);
    assert.ok(!existsSync(join(bundle, 'rootfs/usr/lib/tslink/tailscale/THIS-IS-A-TEST-DOUBLE')) && existsSync(join(bundle, 'rootfs/usr/lib/tslink/tailscale/tailscaled')), 'the real Tailscale is bundled');
    for (const tag of [VERSION, `${VERSION}-next`]) {
      const ref = registry.ref('tslink', tag);
      await removePlugin(ref);
      await mustDocker('plugin', 'create', ref, bundle);
      await mustDocker('plugin', 'push', ref);
      await removePlugin(ref);
    }
    await removePlugin(DRIVER);
    await mustDocker('plugin', 'install', '--grant-all-permissions', '--alias', ALIAS, registry.ref('tslink', VERSION), ...settings);
    await mustDocker('network', 'create', '-d', DRIVER, '--opt', `tslink.authkey=${key.key}`, '--opt', `tslink.loginserver=${CONTROL_URL}`, net);
    for (const c of names) {
      await mustDocker('run', '-d', '--restart', 'always', '--name', c, '--network', net, '--label', `tslink.hostname=${c.replace('mreal-', 'real-')}`, IMAGE, 'sleep', '3600');
    }
  });

  after(async () => {
    await docker('rm', '-f', ...names);
    await docker('network', 'rm', net);
    await removePlugin(DRIVER);
    registry?.stop();
    await hs.stop();
  });

  it('each container is a node in control, and they reach each other', async () => {
    await allRunning('installed');
    for (const c of names) await hs.nodeNamed(c.replace('mreal-', 'real-'));
    await reaches('mreal-a', 'mreal-c', 'installed');
    // The node's own view, through its daemon socket in the plugin's data mount.
    const st = await nodeCli(data, await endpointOf('mreal-b'), ['status', '--json']);
    assert.equal((JSON.parse(st.stdout) as { BackendState: string }).BackendState, 'Running');
  });

  it('an upgrade with the key deleted in control: every node comes back running, no new node', async () => {
    const before = await controlView();
    await hs.expireKey(keyId);
    await hs.deleteKey(keyId);
    // The README's upgrade sequence; an upgrade resets a moved data mount, so it is set again.
    await mustDocker('plugin', 'disable', '-f', DRIVER);
    await mustDocker('plugin', 'upgrade', '--grant-all-permissions', '--skip-remote-check', DRIVER, registry!.ref('tslink', `${VERSION}-next`));
    await mustDocker('plugin', 'set', DRIVER, `data.source=${data}`);
    await mustDocker('plugin', 'enable', DRIVER);
    assert.match(await mustDocker('plugin', 'inspect', '-f', '{{.PluginReference}}', DRIVER), /-next$/, 'the upgraded plugin runs');
    await allRunning('after the upgrade');
    assert.deepEqual(await controlView(), before, 'the same nodes in control, none new');
    await reaches('mreal-b', 'mreal-a', 'after the upgrade');
    await waitFor('one tailscaled per container', async () => (await managedDaemons()) === names.length || undefined, 30_000, 250);
  });

  it('a simulated host reboot with the key gone: every node comes back running, no new node', async () => {
    const before = await controlView();
    // Power off: dockerd stops (its managed plugin with it, and every tailscaled in the plugin's
    // PID namespace); then what a reboot clears in the kernel.
    await sh(join(ROOT, 'scripts/engine.sh'), ['stop'], { timeoutMs: 120_000 });
    await waitFor('no tailscaled left', async () => (await managedDaemons()) === 0 || undefined, 30_000, 250);
    await clearKernelState();
    const started = await sh(join(ROOT, 'scripts/engine.sh'), ['start', ENGINE], { timeoutMs: 180_000 });
    assert.equal(started.code, 0, started.stderr);
    await waitFor('containers running again', async () => {
      const r = await docker('ps', '-q', '--filter', `network=${net}`);
      return r.stdout.trim().split('\n').filter(Boolean).length === names.length || undefined;
    }, 90_000, 500);
    await allRunning('after the reboot');
    assert.deepEqual(await controlView(), before, 'the same nodes in control, none new');
    await reaches('mreal-c', 'mreal-b', 'after the reboot');
    await waitFor('one tailscaled per container', async () => (await managedDaemons()) === names.length || undefined, 30_000, 250);
  });
});
