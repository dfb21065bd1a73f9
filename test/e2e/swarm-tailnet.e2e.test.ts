/**
 * A swarm service on a real tailnet (issue 21): the 3-node test bed with the plugin bundling the
 * real Tailscale, headscale reachable from every node as an internet host would be, and a
 * service whose tasks, one per node, are nodes in control and reach each other over the tailnet.
 * Node 3 sits behind a home router's NAT (issue 25), as hosts on different LANs do.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DOCKER, ENGINE, IMAGE, ROOT, e2eSkipReason, sh, waitFor } from './harness.js';
import { CONTROL_URL, CTL_ADDR, CTL_NAMESPACE, Headscale, REAL_TS_DIR, TAILSCALED_ENV, type HsNode } from './tailnet.js';
import { SUPPORTED_TAILSCALE } from '../../src/config/tailscale-features.js';

const skip = await e2eSkipReason();
const BED = join(ROOT, 'scripts/swarm-bed.sh');
const BASE = '/var/lib/tslink-swarm';
const NODES = [1, 2, 3] as const;
type NodeNo = (typeof NODES)[number];
/** The control host's second address, on the bed's hub bridge. */
const CTL_ON_HUB = '10.213.0.253';

async function on(n: NodeNo, ...args: string[]): Promise<string> {
  const r = await sh(DOCKER, ['-H', `unix://${join(BASE, `n${n}`, 'docker.sock')}`, ...args], { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`docker (node ${n}) ${args.join(' ')} failed (${r.code}): ${r.stderr || r.stdout}`);
  return r.stdout.trim();
}

async function must(cmd: string, args: string[]): Promise<void> {
  const r = await sh(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

/** What node N's plugin reports for its endpoints. */
interface Status { container?: string; endpoint?: string; state?: string; lastError?: string; peers?: { direct: number; relayed: number } }
function statuses(n: NodeNo): Status[] {
  const dir = join(BASE, `n${n}`, 'plugins/tailscale/status');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Status);
}

describe(`a swarm service on a real tailnet (Tailscale ${SUPPORTED_TAILSCALE}, headscale), 3 nodes on Docker ${ENGINE}`, { skip }, () => {
  const hs = new Headscale();

  before(async () => {
    const bundle = join(mkdtempSync(join(tmpdir(), 'tslink-swarm-real-')), 'bundle');
    const built = await sh(join(ROOT, 'scripts/build-rootfs.sh'), [bundle], { timeoutMs: 180_000 });
    assert.equal(built.code, 0, built.stderr);
    const r = await sh(BED, ['up', ENGINE, bundle], {
      timeoutMs: 300_000,
      env: { ...process.env, TSLINK_BED_NAT: '1', TSLINK_BED_SETTINGS: `TSLINK_TAILSCALED_ENV=${TAILSCALED_ENV}\nTSLINK_STATUS_POLL_MS=5000` },
    });
    process.stdout.write(`${r.stdout.trim()}\n`);
    assert.equal(r.code, 0, r.stderr);
    await hs.start();
    // The control host on the hub too, and each node routes to it there: the nodes reach it as
    // hosts reach a control server on the internet, through their own address (and NAT).
    await must('ip', ['link', 'add', 'tslctl-hub', 'type', 'veth', 'peer', 'name', 'tslctl-h1']);
    await must('ip', ['link', 'set', 'tslctl-hub', 'netns', 'tsw-hub']);
    await must('ip', ['link', 'set', 'tslctl-h1', 'netns', CTL_NAMESPACE]);
    await must('ip', ['-n', 'tsw-hub', 'link', 'set', 'tslctl-hub', 'master', 'br0', 'up']);
    await must('ip', ['-n', CTL_NAMESPACE, 'addr', 'add', `${CTL_ON_HUB}/24`, 'dev', 'tslctl-h1']);
    await must('ip', ['-n', CTL_NAMESPACE, 'link', 'set', 'tslctl-h1', 'up']);
    // Replies to the hub leave from the address the nodes asked (10.214.0.2), not the hub leg's own:
    // a STUN reply from another address matches no NAT mapping and is dropped on the way back.
    await must('ip', ['-n', CTL_NAMESPACE, 'route', 'replace', '10.213.0.0/24', 'dev', 'tslctl-h1', 'src', CTL_ADDR]);
    // Node 3 reaches it through its router, like everything else beyond its LAN.
    for (const n of NODES) await must('ip', ['-n', n === 3 ? 'tsw-r3' : `tsw-n${n}`, 'route', 'add', `${CTL_ADDR}/32`, 'via', CTL_ON_HUB]);
  });

  after(async () => {
    await sh(BED, ['down'], { timeoutMs: 120_000 });
    await hs.stop();
  });

  it('a service\'s tasks on three nodes are nodes in control under their slot names, and reach each other over the tailnet', async () => {
    const key = await hs.key({ reusable: true });
    for (const n of NODES) {
      await on(n, 'network', 'create', '--config-only', '-o', `tslink.authkey=${key.key}`, '-o', `tslink.loginserver=${CONTROL_URL}`, 'realconf');
    }
    await on(1, 'network', 'create', '-d', 'tslink:latest', '--scope', 'swarm', '--config-from', 'realconf', 'realnet');
    await on(1, 'service', 'create', '-d', '--name', 'sw', '--replicas', '3', '--replicas-max-per-node', '1', '--network', 'realnet',
      '--stop-grace-period', '1s', '--container-label', 'tslink.hostname=sw-{{.Task.Slot}}', IMAGE, 'sleep', '3600');
    const tasks = await waitFor('3 tasks running, one per node', async () => {
      const out = await on(1, 'service', 'ps', 'sw', '--filter', 'desired-state=running', '--no-trunc', '--format', '{{.ID}} {{.Name}} {{.Node}} {{.CurrentState}}');
      const t = out.split('\n').filter((l) => l.includes(' Running ')).map((l) => {
        const [id, name, node] = l.split(' ');
        return { id: id!, slot: Number(name!.split('.')[1]), node: Number(node!.replace('tsw-n', '')) as NodeNo };
      });
      return t.length === 3 ? t : undefined;
    }, 120_000, 500);
    assert.deepEqual(tasks.map((t) => t.node).sort(), [1, 2, 3], 'one task per node');
    const containers = new Map<number, { node: NodeNo; container: string }>();
    for (const t of tasks) containers.set(t.slot, { node: t.node, container: await on(1, 'inspect', '-f', '{{.Status.ContainerStatus.ContainerID}}', t.id) });
    for (const [slot, c] of containers) {
      await waitFor(`sw-${slot} running on tsw-n${c.node}`, async () => {
        const s = statuses(c.node).find((x) => x.container === c.container);
        if (s?.state === 'failed' || s?.state === 'logged-out') throw new Error(`sw-${slot}: ${s.state}: ${s.lastError}`);
        return s?.state === 'running' || undefined;
      }, 90_000, 500);
    }
    const inControl = new Map<number, HsNode>();
    for (const slot of containers.keys()) inControl.set(slot, await hs.nodeNamed(`sw-${slot}`));
    assert.equal(new Set([...inControl.values()].map((n) => n.id)).size, 3, 'three distinct nodes in control');
    const v4 = (n: HsNode): string => n.ipAddresses.find((a) => a.includes('.'))!;
    // Every ordered pair: packets from one node's container to another node's, over the tailnet.
    for (const [from, c] of containers) {
      for (const [to, peer] of inControl) {
        if (from === to) continue;
        await waitFor(`sw-${from} (tsw-n${c.node}) pings sw-${to} over the tailnet`, async () => {
          const r = await sh(DOCKER, ['-H', `unix://${join(BASE, `n${c.node}`, 'docker.sock')}`, 'exec', c.container, 'ping', '-c', '1', '-W', '2', v4(peer)]);
          return r.code === 0 || undefined;
        }, 45_000, 500);
      }
    }
    await on(1, 'service', 'rm', 'sw');
    await waitFor('realnet removable', async () => ((await sh(DOCKER, ['-H', `unix://${join(BASE, 'n1', 'docker.sock')}`, 'network', 'rm', 'realnet'])).code === 0 || undefined), 60_000, 1000);
  });

  /**
   * 10 tasks on node 1 and 10 on node 3 (behind the router), every cross-host pair pinged with
   * `tailscale ping` from the node-1 side, which stops at the first direct pong. Sources run side
   * by side, each one's peers one after another.
   */
  async function crossHostPaths(tag: string, pingArgs: string[], allAtOnce = false): Promise<{ pair: string; ms: number; last: string }[]> {
    const key = await hs.key({ reusable: true });
    for (const n of NODES) await on(n, 'network', 'create', '--config-only', '-o', `tslink.authkey=${key.key}`, '-o', `tslink.loginserver=${CONTROL_URL}`, `${tag}conf`);
    await on(1, 'network', 'create', '-d', 'tslink:latest', '--scope', 'swarm', '--config-from', `${tag}conf`, `${tag}net`);
    await on(1, 'service', 'create', '-d', '--name', tag, '--replicas', '20', '--replicas-max-per-node', '10', '--constraint', 'node.hostname!=tsw-n2',
      '--network', `${tag}net`, '--stop-grace-period', '1s', '--container-label', `tslink.hostname=${tag}-{{.Task.Slot}}`, IMAGE, 'sleep', '3600');
    const running = (n: NodeNo): { endpoint: string }[] => statuses(n).filter((s) => s.state === 'running' && s.endpoint).map((s) => ({ endpoint: s.endpoint! }));
    await waitFor(`10 ${tag} nodes running on node 1 and 10 on node 3`, async () => (running(1).length >= 10 && running(3).length >= 10) || undefined, 240_000, 1000);
    const v4 = (n: HsNode): string => n.ipAddresses.find((a) => a.includes('.'))!;
    const inControl = (await hs.nodes()).filter((n) => new RegExp(`^${tag}-\\d+$`).test(n.givenName));
    const nameOf = new Map(inControl.map((n) => [v4(n), n.givenName]));
    const cli = (n: NodeNo, endpoint: string, args: string[]) =>
      sh(join(REAL_TS_DIR, 'tailscale'), [`--socket=${join(BASE, `n${n}`, 'plugins/tailscale/run', endpoint.slice(0, 12), 'tailscaled.sock')}`, ...args], { timeoutMs: 60_000 });
    const withIp = (n: NodeNo) => Promise.all(running(n).map(async (e) => ({ ...e, ip: (await cli(n, e.endpoint, ['ip', '-4'])).stdout.trim() })));
    const from = await withIp(1);
    const to = await withIp(3);
    assert.deepEqual([from.length, to.length], [10, 10]);
    assert.ok([...from, ...to].every((e) => nameOf.has(e.ip)), 'every node is in control under its slot name');
    const ping = async (a: (typeof from)[number], b: (typeof to)[number]) => {
      const t0 = Date.now();
      const r = await cli(1, a.endpoint, ['ping', ...pingArgs, b.ip]);
      const lines = r.stdout.trim().split('\n');
      return { pair: `${nameOf.get(a.ip)} → ${nameOf.get(b.ip)}`, ms: Date.now() - t0, last: lines.filter((l) => l.startsWith('pong')).pop() ?? lines.pop() ?? '' };
    };
    const pairs = (await Promise.all(from.map(async (a) => {
      if (allAtOnce) return Promise.all(to.map((b) => ping(a, b)));
      const out: { pair: string; ms: number; last: string }[] = [];
      for (const b of to) out.push(await ping(a, b));
      return out;
    }))).flat();
    const direct = pairs.filter((p) => / via \d+\.\d+\.\d+\.\d+:\d+ /.test(`${p.last} `));
    process.stdout.write(`# ${tag}: ${direct.length} of ${pairs.length} cross-host pairs direct; slowest to direct ${Math.max(0, ...direct.map((p) => p.ms))} ms\n`);
    return pairs;
  }

  async function removeService(tag: string): Promise<void> {
    await on(1, 'service', 'rm', tag);
    await waitFor(`${tag}net removable`, async () => ((await sh(DOCKER, ['-H', `unix://${join(BASE, 'n1', 'docker.sock')}`, 'network', 'rm', `${tag}net`])).code === 0 || undefined), 90_000, 1000);
  }

  it('10 tasks on node 1 and 10 behind the NAT on node 3: every cross-host pair connects directly within 10 s (issue 25)', async () => {
    const pairs = await crossHostPaths('dp', ['-c', '20', '--timeout', '1s']);
    assert.equal(pairs.length, 100);
    const relayed = pairs.filter((p) => !/ via \d+\.\d+\.\d+\.\d+:\d+ /.test(`${p.last} `) || p.ms > 10_000);
    assert.deepEqual(relayed.map((p) => `${p.pair}: ${p.last} (${p.ms} ms)`), [], 'every pair direct within 10 s');
    // tailscaled's own view, as the node's status (and so `tslink status`) shows it.
    const seen = await waitFor('a node 1 status counting its 10 direct peers', async () => statuses(1).find((s) => (s.peers?.direct ?? 0) >= 10), 30_000, 1000);
    assert.equal(seen.peers?.relayed, 0);
    await removeService('dp');
  });

  it('the same with the per-container ports off (TSLINK_WIREGUARD_PORTS=off): every pair still works, and the count of direct ones is reported', async () => {
    for (const n of NODES) {
      // A worker lets go of a removed swarm network's plugin reference a moment after the manager.
      await waitFor(`the plugin disabled on node ${n}`, async () => ((await sh(DOCKER, ['-H', `unix://${join(BASE, `n${n}`, 'docker.sock')}`, 'plugin', 'disable', 'tslink:latest'])).code === 0 || undefined), 60_000, 1000);
      await on(n, 'plugin', 'set', 'tslink:latest', 'TSLINK_WIREGUARD_PORTS=off');
      await on(n, 'plugin', 'enable', 'tslink:latest');
    }
    // Off leaves no forward behind: the chain is gone from every node's host.
    for (const n of NODES) {
      const nat = await sh('ip', ['netns', 'exec', `tsw-n${n}`, 'iptables', '-w', '-t', 'nat', '-S']);
      assert.doesNotMatch(nat.stdout, /TSLINK-PORTS/, `node ${n}`);
    }
    // Relayed pairs ping all 10 times: every pair at once keeps this to seconds.
    const pairs = await crossHostPaths('np', ['-c', '10', '--timeout', '1s'], true);
    assert.equal(pairs.length, 100);
    assert.deepEqual(pairs.filter((p) => !p.last.startsWith('pong')).map((p) => `${p.pair}: ${p.last}`), [], 'every pair answers, relayed or not');
    // What tailscaled itself sees is what the status (and `tslink status`) reports.
    const direct = pairs.filter((p) => / via \d+\.\d+\.\d+\.\d+:\d+ /.test(`${p.last} `)).length;
    if (direct < pairs.length) await waitFor('a node 1 status counting relayed peers', async () => statuses(1).find((s) => (s.peers?.relayed ?? 0) > 0), 30_000, 1000);
    await removeService('np');
  });
});
