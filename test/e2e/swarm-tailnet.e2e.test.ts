/**
 * A swarm service on a real tailnet (issue 21): the 3-node test bed with the plugin bundling the
 * real Tailscale, headscale reachable from every node as an internet host would be, and a
 * service whose tasks, one per node, are nodes in control and reach each other over the tailnet.
 * Node 3 sits behind a home router's NAT (issue 25), as hosts on different LANs do.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DOCKER, ENGINE, IMAGE, e2eSkipReason, sh, waitFor } from './harness.js';
import { CONTROL_URL, Headscale, type HsNode } from './tailnet.js';
import { BED_BASE as BASE, BED_NODES as NODES, bedNodeCli as cli, bedStatuses as statuses, onNode as on, setBedPlugin, startTailnetBed, stopTailnetBed, type NodeNo } from './swarm-tailnet-bed.js';
import { SUPPORTED_TAILSCALE } from '../../src/config/tailscale-features.js';

const skip = await e2eSkipReason();

describe(`a swarm service on a real tailnet (Tailscale ${SUPPORTED_TAILSCALE}, headscale), 3 nodes on Docker ${ENGINE}`, { skip }, () => {
  let hs: Headscale;

  before(async () => {
    hs = await startTailnetBed(ENGINE);
  });

  after(async () => {
    if (hs) await stopTailnetBed(hs);
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
    const withIp = (n: NodeNo) => Promise.all(running(n).map(async (e) => ({ ...e, ip: (await cli(n, e.endpoint, ['ip', '-4'])).stdout.trim() })));
    const from = await withIp(1);
    const to = await withIp(3);
    assert.deepEqual([from.length, to.length], [10, 10]);
    assert.ok([...from, ...to].every((e) => nameOf.has(e.ip)), 'every node is in control under its slot name');
    // Timing starts once each side's netmap lists the other: a ping before that only measures control.
    const knows = async (n: NodeNo, endpoint: string, ips: string[]): Promise<boolean> => {
      const st = JSON.parse((await cli(n, endpoint, ['status', '--json'])).stdout || '{}') as { Peer?: Record<string, { TailscaleIPs?: string[] }> };
      const seen = new Set(Object.values(st.Peer ?? {}).flatMap((p) => p.TailscaleIPs ?? []));
      return ips.every((ip) => seen.has(ip));
    };
    await waitFor('every node 1 and node 3 node knowing its 10 peers on the other host', async () => {
      const ok = await Promise.all([...from.map((a) => knows(1, a.endpoint, to.map((b) => b.ip))), ...to.map((b) => knows(3, b.endpoint, from.map((a) => a.ip)))]);
      return ok.every(Boolean) || undefined;
    }, 60_000, 1000);
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
    await setBedPlugin(['TSLINK_WIREGUARD_PORTS=off']);
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
