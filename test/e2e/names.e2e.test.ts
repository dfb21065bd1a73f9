/**
 * Names inside tslink containers (issue 24), on a real tailnet (headscale with MagicDNS on):
 * a peer's MagicDNS name and control's extra records resolve through the container's own node,
 * Docker's names and public names resolve as before (also while the node's tailscaled is dead),
 * tslink.magicdns=false turns it off, and a Compose service reaches another by its Compose name
 * over the tailnet. What is asserted is what an application in the container gets: glibc's
 * getent, and the address a peer saw the connection come from.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { DOCKER, ENGINE, IMAGE, PluginProcess, ROOT, docker, e2eSkipReason, mustDocker, sh, tailscaledProcesses, uniq, waitFor } from './harness.js';
import { BASE_DOMAIN, CONTROL_URL, CTL_ADDR, CTL_NAMESPACE, EXTRA_RECORD, Headscale, REAL_TS_DIR, TAILSCALED_ENV, type HsNode } from './tailnet.js';
import { PUBLIC_ADDRESS, PUBLIC_NAME } from './test-resolver.js';

const skip = await e2eSkipReason();
const COMPOSE_FILES = ['-f', join(ROOT, 'examples/compose.yaml'), '-f', join(ROOT, 'test/e2e/compose.tailnet.override.yaml')];

describe(`names in tslink containers: MagicDNS, Docker's names, Compose names, on Docker ${ENGINE}`, { skip }, () => {
  const hs = new Headscale();
  const plugin = new PluginProcess(undefined, { TS_AUTHKEY: '', TS_PATH: REAL_TS_DIR, TSLINK_TAILSCALED_ENV: TAILSCALED_ENV, TSLINK_STATUS_POLL_MS: '5000' });
  const net = uniq('tsnames');
  const plain = uniq('plainbr');
  const containers: string[] = [];
  let resolver: ChildProcess | undefined;
  let composeEnv: NodeJS.ProcessEnv = {};

  /** A tslink container (also on `plain` when asked) whose upstream DNS is the test resolver. */
  async function run(name: string, hostname: string, ...args: string[]): Promise<void> {
    containers.push(name);
    await mustDocker('run', '-d', '--name', name, '--network', net, '--dns', CTL_ADDR, '--label', `tslink.hostname=${hostname}`, ...args, IMAGE, 'sleep', '600');
  }
  const getent = async (c: string, name: string): Promise<string | undefined> => {
    const r = await docker('exec', c, 'getent', 'ahostsv4', name);
    return r.code === 0 ? r.stdout.split(/\s+/)[0] : undefined;
  };
  const v4 = (n: HsNode): string => n.ipAddresses.find((a) => a.includes('.'))!;
  const inControl = (name: string): Promise<HsNode> =>
    waitFor(`control to list ${name} online`, async () => (await hs.nodes()).find((n) => n.givenName === name && n.online && n.ipAddresses.length > 0), 60_000, 250);

  before(async () => {
    await hs.start();
    const key = await hs.key({ reusable: true });
    await plugin.start();
    await mustDocker('network', 'create', '-d', 'tslink', '--opt', `tslink.authkey=${key.key}`, '--opt', `tslink.loginserver=${CONTROL_URL}`, net);
    await mustDocker('network', 'create', plain);
    // The internet's DNS, as far as these containers know: in the control server's namespace.
    resolver = spawn('ip', ['netns', 'exec', CTL_NAMESPACE, process.execPath, join(ROOT, 'dist/test/e2e/test-resolver.js'), CTL_ADDR, '53'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((res, rej) => {
      resolver!.stdout!.once('data', () => res());
      resolver!.once('exit', (code) => rej(new Error(`test resolver exited ${code}`)));
    });
    composeEnv = { ...process.env, TS_AUTHKEY: key.key, TSLINK_LOGINSERVER: CONTROL_URL };
  });

  after(async () => {
    await sh(DOCKER, ['compose', ...COMPOSE_FILES, 'down'], { env: composeEnv, timeoutMs: 120_000 });
    if (containers.length) await docker('rm', '-f', ...containers);
    await docker('network', 'rm', net, plain);
    resolver?.kill();
    await plugin.kill('SIGTERM');
    await hs.stop();
  });

  it('a peer\'s MagicDNS name and control\'s extra record resolve; Docker\'s and public names still do', async () => {
    await run('names-a', 'names-a');
    await run('names-b', 'names-b');
    await mustDocker('network', 'connect', plain, 'names-a');
    containers.push('names-plain');
    await mustDocker('run', '-d', '--name', 'names-plain', '--network', plain, IMAGE, 'sleep', '600');
    const b = await inControl('names-b');
    await inControl('names-a');
    assert.equal(await waitFor('names-b by its MagicDNS name', () => getent('names-a', `names-b.${BASE_DOMAIN}`), 30_000, 250), v4(b));
    assert.equal(await getent('names-a', `NAMES-B.${BASE_DOMAIN.toUpperCase()}`), v4(b), 'DNS names have no case');
    assert.equal(await getent('names-a', EXTRA_RECORD.name), EXTRA_RECORD.address);
    const plainIp = await mustDocker('inspect', '-f', `{{(index .NetworkSettings.Networks "${plain}").IPAddress}}`, 'names-plain');
    assert.equal(await getent('names-a', 'names-plain'), plainIp, 'a Docker name on an ordinary bridge network');
    assert.equal(await getent('names-a', PUBLIC_NAME), PUBLIC_ADDRESS, 'a public name from the upstream resolver');
    assert.equal(await getent('names-a', `nobody.${BASE_DOMAIN}`), undefined, 'a tailnet name nobody has');
  });

  it('with the node\'s tailscaled killed, public and Docker names still resolve', async () => {
    const netns = await readlink(`/proc/${await mustDocker('inspect', '-f', '{{.State.Pid}}', 'names-a')}/ns/net`);
    const pids = await tailscaledProcesses(plugin.dataDir);
    const mine: number[] = [];
    for (const p of pids) if ((await readlink(`/proc/${p}/ns/net`).catch(() => '')) === netns) mine.push(p);
    assert.equal(mine.length, 1, 'one tailscaled in names-a');
    process.kill(mine[0]!, 'SIGKILL');
    await waitFor('tailscaled gone', async () => (await readlink(`/proc/${mine[0]}/ns/net`).catch(() => 'gone')) === 'gone', 5000, 20);
    assert.equal(await getent('names-a', PUBLIC_NAME), PUBLIC_ADDRESS);
    assert.ok(await getent('names-a', 'names-plain'));
    // The supervisor brings it back, and with it the tailnet's names.
    const b = await inControl('names-b');
    assert.equal(await waitFor('MagicDNS back', () => getent('names-a', `names-b.${BASE_DOMAIN}`), 60_000, 500), v4(b));
  });

  it('tslink.magicdns=false: no tailnet names, everything else as before', async () => {
    await run('names-off', 'names-off', '--label', 'tslink.magicdns=false');
    await inControl('names-off');
    assert.equal(await getent('names-off', PUBLIC_NAME), PUBLIC_ADDRESS);
    assert.equal(await getent('names-off', `names-b.${BASE_DOMAIN}`), undefined);
  });

  it('examples/compose.yaml: web reaches whoami by its Compose name, over the tailnet', async () => {
    const up = await sh(DOCKER, ['compose', ...COMPOSE_FILES, 'up', '-d', 'web', 'whoami'], { env: composeEnv, timeoutMs: 120_000 });
    assert.equal(up.code, 0, up.stderr);
    const web = await inControl('example-web');
    await inControl('example-whoami');
    const said = await waitFor('curl http://whoami from web', async () => {
      const r = await docker('exec', 'tslink-example-web-1', 'curl', '-sS', '--max-time', '5', 'http://whoami/cgi-bin/whoami');
      return r.code === 0 ? r.stdout : undefined;
    }, 30_000, 500);
    // whoami saw web's tailnet address: the connection crossed the tailnet, where its ACLs apply.
    // (busybox httpd writes an IPv4 peer as IPv4-mapped IPv6.)
    assert.match(said, new RegExp(`RemoteAddr: (\\[::ffff:)?${v4(web).replace(/\./g, '\\.')}\\b`));
  });

  it('the plugin killed: public names still resolve; restarted: the tailnet\'s names and Compose names again, each rule once', async () => {
    await plugin.kill('SIGKILL');
    await waitFor('every tailscaled gone with the plugin', async () => (await tailscaledProcesses(plugin.dataDir)).length === 0, 15_000, 100);
    assert.equal(await getent('names-a', PUBLIC_NAME), PUBLIC_ADDRESS, 'no tslink process and no tailscaled: public names resolve');
    await plugin.start();
    const b = await inControl('names-b');
    assert.equal(await waitFor('MagicDNS after the restart', () => getent('names-a', `names-b.${BASE_DOMAIN}`), 60_000, 500), v4(b));
    const web = await inControl('example-web');
    const said = await waitFor('curl http://whoami after the restart', async () => {
      const r = await docker('exec', 'tslink-example-web-1', 'curl', '-sS', '--max-time', '5', 'http://whoami/cgi-bin/whoami');
      return r.code === 0 ? r.stdout : undefined;
    }, 30_000, 500);
    assert.match(said, new RegExp(`RemoteAddr: (\\[::ffff:)?${v4(web).replace(/\./g, '\\.')}\\b`));
    const pid = await mustDocker('inspect', '-f', '{{.State.Pid}}', 'names-a');
    const rules = (await sh('nsenter', ['-t', pid, '-n', 'sh', '-c', 'iptables-save -t nat; iptables-save -t raw'])).stdout.split('\n');
    assert.deepEqual(rules.filter((l) => l.startsWith('-A OUTPUT')).slice(0, 1), ['-A OUTPUT -j TSLINK-OUTPUT'], 'our jump first, before Docker\'s resolver rule');
    assert.equal(rules.filter((l) => /-j TSLINK-/.test(l)).length, 3, 'one jump per chain, not one per start');
    assert.equal(rules.filter((l) => l.includes('--to-destination 100.100.100.100')).length, 1);
  });
});
