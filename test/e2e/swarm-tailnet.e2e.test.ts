/**
 * A swarm service on a real tailnet (issue 21): the 3-node test bed with the plugin bundling the
 * real Tailscale, headscale reachable from every node as an internet host would be, and a
 * service whose tasks, one per node, are nodes in control and reach each other over the tailnet.
 * Node 3 sits behind a home router's NAT (issue 25): with 10 tasks on node 1 and 10 on node 3,
 * every cross-host pair must find a direct path, not a relay, as `tailscale ping` reports it.
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
function statuses(n: NodeNo): { container?: string; endpoint?: string; state?: string; lastError?: string; peers?: { direct: number; relayed: number } }[] {
  const dir = join(BASE, `n${n}`, 'plugins/tailscale/status');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as { container?: string; state?: string });
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

  it('10 tasks on node 1 and 10 behind the NAT on node 3: every cross-host pair connects directly within 10 s (tailscale ping)', async () => {
    const key = await hs.key({ reusable: true });
    for (const n of NODES) await on(n, 'network', 'create', '--config-only', '-o', `tslink.authkey=${key.key}`, '-o', `tslink.loginserver=${CONTROL_URL}`, 'dpconf');
    await on(1, 'network', 'create', '-d', 'tslink:latest', '--scope', 'swarm', '--config-from', 'dpconf', 'dpnet');
    await on(1, 'service', 'create', '-d', '--name', 'dp', '--replicas', '20', '--replicas-max-per-node', '10', '--constraint', 'node.hostname!=tsw-n2',
      '--network', 'dpnet', '--stop-grace-period', '1s', '--container-label', 'tslink.hostname=dp-{{.Task.Slot}}', IMAGE, 'sleep', '3600');
    const running = (n: NodeNo): { endpoint: string }[] => statuses(n).filter((s) => s.state === 'running' && s.endpoint).map((s) => ({ endpoint: s.endpoint! }));
    await waitFor('10 dp nodes running on node 1 and 10 on node 3', async () => (running(1).length >= 10 && running(3).length >= 10) || undefined, 180_000, 1000);
    const v4 = (n: HsNode): string => n.ipAddresses.find((a) => a.includes('.'))!;
    const dp = (await hs.nodes()).filter((n) => /^dp-\d+$/.test(n.givenName));
    const ipOf = new Map(dp.map((n) => [v4(n), n.givenName]));
    const cli = (n: NodeNo, endpoint: string, args: string[]) =>
      sh(join(REAL_TS_DIR, 'tailscale'), [`--socket=${join(BASE, `n${n}`, 'plugins/tailscale/run', endpoint.slice(0, 12), 'tailscaled.sock')}`, ...args], { timeoutMs: 30_000 });
    const selfIp = async (n: NodeNo, endpoint: string): Promise<string> => (await cli(n, endpoint, ['ip', '-4'])).stdout.trim();
    const from = await Promise.all(running(1).map(async (e) => ({ ...e, ip: await selfIp(1, e.endpoint) })));
    const to = await Promise.all(running(3).map(async (e) => ({ ...e, ip: await selfIp(3, e.endpoint) })));
    assert.ok([...from, ...to].every((e) => ipOf.has(e.ip)), 'every node is in control');
    // One source at a time per node 1 container, all sources at once: each ping stops at the first direct pong.
    const results = await Promise.all(from.map(async (a) => {
      const out: { pair: string; ms: number; last: string }[] = [];
      for (const b of to) {
        const t0 = Date.now();
        const r = await cli(1, a.endpoint, ['ping', '-c', '20', '--timeout', '1s', b.ip]);
        const last = r.stdout.trim().split('\n').filter((l) => l.startsWith('pong')).pop() ?? r.stdout.trim().split('\n').pop() ?? '';
        out.push({ pair: `${ipOf.get(a.ip)} → ${ipOf.get(b.ip)}`, ms: Date.now() - t0, last });
      }
      return out;
    }));
    const pairs = results.flat();
    const relayed = pairs.filter((p) => !/ via \d+\.\d+\.\d+\.\d+:\d+ /.test(`${p.last} `) || p.ms > 10_000);
    process.stdout.write(`# direct paths: ${pairs.length - relayed.length} of ${pairs.length} pairs; slowest ${Math.max(...pairs.map((p) => p.ms))} ms\n`);
    assert.equal(pairs.length, 100);
    assert.deepEqual(relayed.map((p) => `${p.pair}: ${p.last} (${p.ms} ms)`), [], 'every pair direct within 10 s');
    // tailscaled's own view, in the node's status: its active peers are direct.
    const seen = await waitFor('a node 1 status counting its direct peers', async () => statuses(1).find((s) => (s.peers?.direct ?? 0) >= 10), 30_000, 1000);
    assert.equal(seen.peers?.relayed, 0);
    await on(1, 'service', 'rm', 'dp');
    await waitFor('dpnet removable', async () => ((await sh(DOCKER, ['-H', `unix://${join(BASE, 'n1', 'docker.sock')}`, 'network', 'rm', 'dpnet'])).code === 0 || undefined), 60_000, 1000);
  });
});
