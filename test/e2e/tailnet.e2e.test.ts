/**
 * Every node on an actual tailnet (issue 21): the real tailscale/tailscaled that the plugin bundles,
 * headscale as the control server. What is asserted is what a user gets: what control lists, the
 * packets that pass between containers over the tailnet, the path `tailscale ping` reports, what a
 * peer reads from a served port, and that nodes come back without a key after the plugin dies.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ENGINE, IMAGE, PluginProcess, docker, e2eSkipReason, identityDir, mustDocker, restartEngine, tailscaledProcesses, uniq, waitFor } from './harness.js';
import { BASE_DOMAIN, CONTROL_URL, Headscale, REAL_TS_DIR, TAILSCALED_ENV, nodeCli, type HsNode } from './tailnet.js';
import { SUPPORTED_TAILSCALE } from '../../src/config/tailscale-features.js';

const skip = await e2eSkipReason();

describe(`a real tailnet: Tailscale ${SUPPORTED_TAILSCALE} and headscale, on Docker ${ENGINE}`, { skip }, () => {
  const hs = new Headscale();
  const plugin = new PluginProcess(undefined, {
    TS_AUTHKEY: '',
    TS_PATH: REAL_TS_DIR,
    // The log-upload opt-out a user sets the same way; the other real-tailnet suites keep the default.
    TSLINK_TAILSCALED_ENV: `${TAILSCALED_ENV} TS_NO_LOGS_NO_SUPPORT=true`,
    TSLINK_STATUS_POLL_MS: '5000',
  });
  const net = uniq('tsreal');
  const ephNet = uniq('tsrealeph');
  const containers: string[] = [];
  let keyId = 0;
  const suiteStart = Date.now();

  async function run(name: string, hostname: string, network: string, ...args: string[]): Promise<void> {
    containers.push(name);
    // httpd serves a page naming the container, on every address (the tailnet's included).
    await mustDocker('run', '-d', '--restart', 'always', '--name', name, '--network', network, '--label', `tslink.hostname=${hostname}`, ...args, IMAGE,
      'sh', '-c', `echo hello-from-${hostname} > /var/www/index.html && exec httpd -f -p 8080 -h /var/www`);
  }
  async function endpointOf(container: string, network = net): Promise<string> {
    return mustDocker('inspect', '-f', `{{(index .NetworkSettings.Networks "${network}").EndpointID}}`, container);
  }
  async function nodeStatus(container: string, network = net): Promise<Record<string, unknown> | undefined> {
    try {
      return JSON.parse(readFileSync(join(plugin.dataDir, 'status', `${await endpointOf(container, network)}.json`), 'utf8')) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  }
  const running = (container: string, network = net, ms = 60_000) =>
    waitFor(`${container} running`, async () => {
      const s = await nodeStatus(container, network);
      if (s && ['failed', 'logged-out'].includes(String(s['state']))) throw new Error(`${container}: ${String(s['state'])}: ${String(s['lastError'])}`);
      return s?.['state'] === 'running' ? s : undefined;
    }, ms, 200);
  /** The node control lists under this name, once it has an address. */
  const inControl = (name: string): Promise<HsNode> =>
    waitFor(`control to list ${name}`, async () => (await hs.nodes()).find((n) => n.givenName === name && n.ipAddresses.length > 0), 30_000, 250);
  const v4 = (n: HsNode): string => n.ipAddresses.find((a) => a.includes('.'))!;
  const exec = (c: string, ...cmd: string[]) => docker('exec', c, ...cmd);
  /**
   * The body of an HTTP GET made from inside a container (busybox nc: its static wget crashes).
   * nc's input stays open a moment: tailscaled's serve proxy cancels a request whose client has
   * already half-closed the connection.
   */
  const httpGet = async (c: string, ip: string, port: number, host = ip): Promise<string | undefined> => {
    const r = await exec(c, 'sh', '-c', `(printf 'GET / HTTP/1.0\\r\\nHost: ${host}\\r\\n\\r\\n'; sleep 2) | nc -w 5 ${ip} ${port}`);
    const body = r.stdout.split('\r\n\r\n')[1];
    return r.code === 0 && /^HTTP\/1\.[01] 200/.test(r.stdout) ? body?.trim() : undefined;
  };

  before(async () => {
    await hs.start();
    const key = await hs.key({ reusable: true });
    keyId = key.id;
    await plugin.start();
    await mustDocker('network', 'create', '-d', 'tslink', '--opt', `tslink.authkey=${key.key}`, '--opt', `tslink.loginserver=${CONTROL_URL}`, net);
    const eph = await hs.key({ reusable: true, ephemeral: true });
    await mustDocker('network', 'create', '-d', 'tslink', '--opt', `tslink.authkey=${eph.key}`, '--opt', `tslink.loginserver=${CONTROL_URL}`, '--opt', 'tslink.ephemeral=true', ephNet);
  });

  after(async () => {
    if (containers.length) await docker('rm', '-f', ...new Set(containers));
    await docker('network', 'rm', net, ephNet);
    await plugin.kill('SIGTERM');
    await hs.stop();
  });

  it('two containers are nodes in control under their hostnames, and reach each other over the tailnet (ping and TCP)', async () => {
    await run('real-alpha', 'alpha', net);
    await run('real-beta', 'beta', net);
    await running('real-alpha');
    await running('real-beta');
    const alpha = await inControl('alpha');
    const beta = await inControl('beta');
    assert.match(v4(alpha), /^100\./);
    assert.notEqual(v4(alpha), v4(beta));
    assert.equal((await nodeStatus('real-alpha'))?.['hostname'], 'alpha');
    // Packets cross the tailnet: ICMP and a TCP connection to the peer's 100.x address.
    const ping = await waitFor('alpha pings beta over the tailnet', async () => {
      const r = await exec('real-alpha', 'ping', '-c', '1', '-W', '2', v4(beta));
      return r.code === 0 ? r.stdout : undefined;
    }, 30_000, 500);
    assert.match(ping, /1 packets received/);
    assert.equal(await httpGet('real-beta', v4(alpha), 8080), 'hello-from-alpha');
  });

  it("each node keeps its own log identity in its own state: none shares another's, none uploads (TS_NO_LOGS_NO_SUPPORT), and the host's /var/lib/tailscale gets nothing", async () => {
    // The daemon's output reaches its log file through a stream: read until the line is there.
    const logs = await Promise.all(['real-alpha', 'real-beta'].map(async (c) => {
      const file = join(plugin.dataDir, 'logs', `${(await endpointOf(c)).slice(0, 12)}-tailscaled.log`);
      return waitFor(`${c}'s LogID line`, async () => {
        const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
        return /^\S+ \S+ LogID: [0-9a-f]{64}$/m.test(text) ? text : undefined;
      }, 10_000, 100).catch(() => '');
    }));
    const logIds = logs.map((l) => /^\S+ \S+ LogID: ([0-9a-f]{64})$/m.exec(l)?.[1]);
    assert.ok(logIds[0] && logIds[1], 'each daemon logged its log ID');
    assert.notEqual(logIds[0], logIds[1]);
    // Uploading, tailscaled resolves and dials log.tailscale.com within its first second (seen
    // in every log of the other suites); opted out, it never names it.
    for (const l of logs) assert.doesNotMatch(l, /log\.tailscale\.com/);
    for (const h of ['alpha', 'beta']) assert.ok(existsSync(join(identityDir(plugin.dataDir, net, h), 'tailscaled.log.conf')), `${h}'s log config is in its identity`);
    const host = '/var/lib/tailscale';
    const touched = existsSync(host) ? readdirSync(host).filter((f) => statSync(join(host, f)).mtimeMs >= suiteStart) : [];
    assert.deepEqual(touched, [], 'no file in the host\'s /var/lib/tailscale written since the suite began');
  });

  it('tailscale ping between two containers shows a direct path, not DERP', async () => {
    const beta = await inControl('beta');
    const ep = await endpointOf('real-alpha');
    const out = await waitFor('a direct path', async () => {
      const r = await nodeCli(plugin.dataDir, ep, ['ping', '-c', '10', '--timeout', '3s', v4(beta)], 60_000);
      return /pong from beta .* via \d+\.\d+\.\d+\.\d+:\d+/.test(r.stdout) ? r.stdout : undefined;
    }, 45_000, 1000);
    assert.doesNotMatch(out.split('\n').filter((l) => l.includes('pong')).pop() ?? '', /via DERP/);
  });

  it('tslink.serve for tcp and http answers a peer (HTTP by its MagicDNS name in the Host header)', async () => {
    await run('real-gamma', 'gamma', net, '--label', 'tslink.serve.80=http:8080', '--label', 'tslink.serve.9000=tcp:8080');
    await running('real-gamma');
    const gamma = await inControl('gamma');
    const tcp = await waitFor('tcp serve answers', () => httpGet('real-alpha', v4(gamma), 9000), 30_000, 500);
    assert.equal(tcp, 'hello-from-gamma');
    const http = await waitFor('http serve answers', () => httpGet('real-alpha', v4(gamma), 80, `gamma.${BASE_DOMAIN}`), 30_000, 500);
    assert.equal(http, 'hello-from-gamma');
  });

  it('https serving on a tailnet without certificates (headscale) is refused with the reason, not called running', async () => {
    await run('real-tls', 'tlsnode', net, '--label', 'tslink.serve.443=https:8080');
    const st = await waitFor('tlsnode failed', async () => {
      const s = await nodeStatus('real-tls');
      return s?.['state'] === 'failed' ? s : s?.['state'] === 'running' ? assert.fail('called running with https serving that cannot work') : undefined;
    }, 60_000, 250);
    assert.match(String(st['lastError']), /tslink\.serve\.443=https: this tailnet gives its nodes no HTTPS certificates/);
    await inControl('tlsnode'); // the node itself is on the tailnet
    await mustDocker('rm', '-f', 'real-tls');
  });

  it('an ephemeral network\'s node is gone from control once its container is removed', async () => {
    await run('real-eph', 'eph1', ephNet);
    await running('real-eph', ephNet);
    await inControl('eph1');
    await mustDocker('rm', '-f', 'real-eph');
    await waitFor('control to forget eph1', async () => !(await hs.nodes()).some((n) => n.givenName === 'eph1'), 30_000, 500);
  });

  it('a container recreated with the same hostname is the same node in control, with the same address', async () => {
    const before = await inControl('beta');
    await mustDocker('rm', '-f', 'real-beta');
    await run('real-beta', 'beta', net);
    await running('real-beta');
    const again = await inControl('beta');
    assert.equal(again.id, before.id);
    assert.deepEqual(again.ipAddresses, before.ipAddresses);
    assert.equal((await hs.nodes()).filter((n) => n.givenName.startsWith('beta')).length, 1, 'no second node');
  });

  it('a container on another network with the same hostname is another node, and its ephemeral leave takes nothing from the first (issue 22)', async () => {
    const alpha = await inControl('alpha');
    await run('real-alpha-other', 'alpha', ephNet);
    await running('real-alpha-other', ephNet);
    const twins = await waitFor('a second node for the other network', async () => {
      const n = (await hs.nodes()).filter((x) => x.givenName.startsWith('alpha'));
      return n.length === 2 ? n : undefined;
    }, 30_000, 250);
    assert.ok(twins.some((n) => n.id === alpha.id), 'the first network\'s node is untouched');
    await mustDocker('rm', '-f', 'real-alpha-other');
    await waitFor('control to forget the other network\'s node', async () => (await hs.nodes()).filter((x) => x.givenName.startsWith('alpha')).length === 1 || undefined, 30_000, 500);
    const still = await inControl('alpha');
    assert.equal(still.id, alpha.id, 'the same node');
    assert.deepEqual(still.ipAddresses, alpha.ipAddresses);
    assert.equal((await nodeStatus('real-alpha'))?.['state'], 'running');
    assert.equal(await waitFor('beta reaches alpha', () => httpGet('real-beta', v4(alpha), 8080), 30_000, 500), 'hello-from-alpha');
  });

  it('an identity kept by hostname alone (tslink before 0.3) is adopted by its network on upgrade: same node, same address (issue 22)', async () => {
    const before = await inControl('beta');
    await plugin.kill('SIGKILL');
    // The layout of the last release: by-hostname/<hostname>.
    mkdirSync(join(plugin.dataDir, 'by-hostname'), { recursive: true, mode: 0o700 });
    renameSync(identityDir(plugin.dataDir, net, 'beta'), join(plugin.dataDir, 'by-hostname', 'beta'));
    await plugin.start();
    await running('real-beta', net, 90_000);
    assert.ok(existsSync(identityDir(plugin.dataDir, net, 'beta')) && !existsSync(join(plugin.dataDir, 'by-hostname', 'beta')), 'moved under its network');
    const after = await inControl('beta');
    assert.equal(after.id, before.id);
    assert.deepEqual(after.ipAddresses, before.ipAddresses);
    assert.equal((await hs.nodes()).filter((n) => n.givenName.startsWith('beta')).length, 1, 'no second node');
  });

  it('with the key expired and deleted in control, every node comes back running after kill -9 and after a dockerd restart, without a key and without a new node', async () => {
    const nodesBefore = (await hs.nodes()).map((n) => `${n.id} ${n.givenName} ${n.ipAddresses.join(',')}`).sort();
    await hs.expireKey(keyId);
    await hs.deleteKey(keyId);
    for (const [what, restart] of [
      ['kill -9 of the plugin', async () => {
        await plugin.kill('SIGKILL');
        await plugin.start();
      }],
      ['a dockerd restart', () => restartEngine()],
    ] as const) {
      await restart();
      for (const c of ['real-alpha', 'real-beta', 'real-gamma']) await running(c, net, 90_000).catch((e: Error) => assert.fail(`after ${what}: ${e.message}`));
      assert.deepEqual((await hs.nodes()).map((n) => `${n.id} ${n.givenName} ${n.ipAddresses.join(',')}`).sort(), nodesBefore, `after ${what}: the same nodes in control`);
      const beta = await inControl('beta');
      const r = await waitFor(`after ${what}: alpha reaches beta`, () => httpGet('real-alpha', v4(beta), 8080), 30_000, 500);
      assert.equal(r, 'hello-from-beta');
      assert.equal((await tailscaledProcesses(plugin.dataDir)).length, 3, `after ${what}: one tailscaled per node`);
    }
  });
});
