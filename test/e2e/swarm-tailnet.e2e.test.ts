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
import { CONTROL_URL, CTL_ADDR, CTL_NAMESPACE, Headscale, TAILSCALED_ENV, type HsNode } from './tailnet.js';
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
function statuses(n: NodeNo): { container?: string; state?: string; lastError?: string }[] {
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

});
