/**
 * A swarm service on a real tailnet (issue 21): the 3-node test bed with the plugin bundling the
 * real Tailscale, headscale reachable from every node as an internet host would be, and a
 * service whose tasks, one per node, are nodes in control and reach each other over the tailnet.
 * Node 3 sits behind a home router's NAT (issue 25), as hosts on different LANs do.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { DOCKER, ENGINE, IMAGE, e2eSkipReason, sh, waitFor } from './harness.js';
import { CONTROL_URL, Headscale, ROUTED_SUBNET, type HsNode } from './tailnet.js';
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
    // The nodes of the service's running containers, as Docker lists them on that host: a task
    // swarm is replacing, or a node of an earlier test still stopping, is not one of the 10.
    const running = async (n: NodeNo): Promise<{ endpoint: string }[]> => {
      const live = new Set((await on(n, 'ps', '--filter', `label=com.docker.swarm.service.name=${tag}`, '--no-trunc', '-q')).split('\n').filter(Boolean));
      return statuses(n).filter((s) => s.state === 'running' && s.endpoint && s.container && live.has(s.container)).map((s) => ({ endpoint: s.endpoint! }));
    };
    const others = (n: NodeNo, mine: { endpoint: string }[]) => statuses(n).filter((s) => !mine.some((m) => m.endpoint === s.endpoint));
    await waitFor(`10 ${tag} nodes running on node 1 and 10 on node 3`, async () => {
      const [a, b] = [await running(1), await running(3)];
      return (a.length === 10 && b.length === 10) || undefined;
    }, 240_000, 1000);
    const v4 = (n: HsNode): string => n.ipAddresses.find((a) => a.includes('.'))!;
    const inControl = (await hs.nodes()).filter((n) => new RegExp(`^${tag}-\\d+$`).test(n.givenName));
    const nameOf = new Map(inControl.map((n) => [v4(n), n.givenName]));
    const withIp = async (n: NodeNo) => Promise.all((await running(n)).map(async (e) => ({ ...e, ip: (await cli(n, e.endpoint, ['ip', '-4'])).stdout.trim() })));
    const from = await withIp(1);
    const to = await withIp(3);
    // One CI run counted 11 running nodes on node 1 here. What swarm did besides starting 20
    // tasks says whether it was replacing one; a node outliving its container would be a bug.
    const history = await on(1, 'service', 'ps', tag, '--no-trunc', '--format', '{{.Name}} {{.Node}} {{.DesiredState}} {{.CurrentState}} {{.Error}}');
    for (const l of history.split('\n').filter((x) => !/ Running Running /.test(x))) process.stdout.write(`# ${tag} task: ${l}\n`);
    await waitFor('no node on nodes 1 and 3 but those of the running tasks', async () => {
      const extra = [...others(1, await running(1)), ...others(3, await running(3))];
      if (extra.length) throw new Error(`also reported: ${JSON.stringify(extra)}`);
      return true;
    }, 60_000, 1000);
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
      let r = await cli(1, a.endpoint, ['ping', ...pingArgs, b.ip]);
      // With a hundred CLIs at once one may end without a word (measured once on 20.10): that is
      // the CLI, not the path; ask that pair once more before judging it.
      if (!r.stdout.trim()) r = await cli(1, a.endpoint, ['ping', ...pingArgs, b.ip]);
      const lines = `${r.stdout.trim()}\n${r.stderr.trim()}`.trim().split('\n');
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
    // Removed even when an assertion fails: the next test disables the plugin, which a network in use refuses.
    try {
      const pairs = await crossHostPaths('dp', ['-c', '20', '--timeout', '1s']);
      assert.equal(pairs.length, 100);
      const relayed = pairs.filter((p) => !/ via \d+\.\d+\.\d+\.\d+:\d+ /.test(`${p.last} `) || p.ms > 10_000);
      assert.deepEqual(relayed.map((p) => `${p.pair}: ${p.last} (${p.ms} ms)`), [], 'every pair direct within 10 s');
      // tailscaled's own view, as the node's status (and so `tslink status`) shows it.
      const seen = await waitFor('a node 1 status counting its 10 direct peers', async () => statuses(1).find((s) => (s.peers?.direct ?? 0) >= 10), 30_000, 1000);
      assert.equal(seen.peers?.relayed, 0);
    } finally {
      await removeService('dp');
    }
  });

  it('the same with the per-container ports off (TSLINK_WIREGUARD_PORTS=off): every pair still works, and the count of direct ones is reported', async () => {
    await setBedPlugin(['TSLINK_WIREGUARD_PORTS=off']);
    // Off leaves no forward behind: the chain is gone from every node's host.
    for (const n of NODES) {
      const nat = await sh('ip', ['netns', 'exec', `tsw-n${n}`, 'iptables', '-w', '-t', 'nat', '-S']);
      assert.doesNotMatch(nat.stdout, /TSLINK-PORTS/, `node ${n}`);
    }
    try {
      // Relayed pairs ping all 10 times: every pair at once keeps this to seconds.
      const pairs = await crossHostPaths('np', ['-c', '10', '--timeout', '1s'], true);
      assert.equal(pairs.length, 100);
      assert.deepEqual(pairs.filter((p) => !p.last.startsWith('pong')).map((p) => `${p.pair}: ${p.last}`), [], 'every pair answers, relayed or not');
      // What tailscaled itself sees is what the status (and `tslink status`) reports.
      const direct = pairs.filter((p) => / via \d+\.\d+\.\d+\.\d+:\d+ /.test(`${p.last} `)).length;
      if (direct < pairs.length) await waitFor('a node 1 status counting relayed peers', async () => statuses(1).find((s) => (s.peers?.relayed ?? 0) > 0), 30_000, 1000);
    } finally {
      await removeService('np');
    }
  });
  /**
   * Routing through the tailnet (issue 26). "The internet" is a public address on the hub
   * (203.0.113.10, a documentation range: exit nodes carry only what the policy's
   * autogroup:internet holds, and that leaves private ranges out): a server there answers each
   * request with the address it came from. Node 1 reaches it from 10.213.0.1, node 3 from its
   * router's 10.213.0.3.
   */
  describe('routing through the tailnet: exit nodes and subnet routes (issue 26)', () => {
    const INTERNET = '203.0.113.10';
    const whoAmI = `http://${INTERNET}:8099/`;
    let echo: ReturnType<typeof spawn> | undefined;
    const exec = (n: NodeNo, c: string, cmd: string) => sh(DOCKER, ['-H', `unix://${join(BASE, `n${n}`, 'docker.sock')}`, 'exec', c, 'sh', '-c', cmd], { timeoutMs: 60_000 });
    const running = (n: NodeNo, container: string, what: string) =>
      waitFor(`${what} running on node ${n}`, async () => {
        const st = statuses(n).find((x) => x.container === container);
        if (st?.state === 'failed') throw new Error(`${what}: ${st.lastError}`);
        return st?.state === 'running' ? st : undefined;
      }, 90_000, 500);
    const run = (n: NodeNo, name: string, ...args: string[]) => on(n, 'run', '-d', '--name', name, ...args, IMAGE, 'sleep', '3600');

    before(async () => {
      assert.equal((await sh('ip', ['-n', 'tsw-hub', 'addr', 'add', `${INTERNET}/32`, 'dev', 'br0'])).code, 0);
      for (const ns of ['tsw-n1', 'tsw-n2', 'tsw-r3']) assert.equal((await sh('ip', ['-n', ns, 'route', 'add', `${INTERNET}/32`, 'via', '10.213.0.254'])).code, 0, ns);
      echo = spawn('ip', ['netns', 'exec', 'tsw-hub', process.execPath, '-e',
        `require('http').createServer((q, r) => r.end(q.socket.remoteAddress.replace('::ffff:', ''))).listen(8099, '${INTERNET}')`], { stdio: 'ignore' });
      const key = await hs.key({ reusable: true });
      for (const n of NODES) await on(n, 'network', 'create', '--config-only', '-o', `tslink.authkey=${key.key}`, '-o', `tslink.loginserver=${CONTROL_URL}`, 'rtconf');
      await on(1, 'network', 'create', '-d', 'tslink:latest', '--scope', 'swarm', '--attachable', '--config-from', 'rtconf', 'rtnet');
      // A node drops its copy of an attachable swarm network when its last container leaves it; a
      // container started in that moment fails ("network rtnet not found", seen once on 28.5).
      // One container per node holds the network for both tests.
      for (const n of [1, 3] as const) await run(n, `rt-hold-${n}`, '--network', 'rtnet', '--label', `tslink.hostname=rt-hold-${n}`);
    });

    after(async () => {
      echo?.kill();
      for (const n of [1, 3] as const) await sh(DOCKER, ['-H', `unix://${join(BASE, `n${n}`, 'docker.sock')}`, 'rm', '-f', `rt-hold-${n}`]);
    });

    it("a container using another host's container as its exit node reaches the internet from that host's address; with the exit node gone, its traffic stops and nothing leaves by its own host", async () => {
      const plain = await run(1, 'rt-plain', '--network', 'rtnet', '--label', 'tslink.hostname=rt-plain');
      await running(1, plain, 'rt-plain');
      assert.equal((await exec(1, plain, `curl -s -m 10 ${whoAmI}`)).stdout, '10.213.0.1', 'without an exit node: from its own host');
      const exitNode = await run(3, 'rt-exit', '--network', 'rtnet', '--label', 'tslink.hostname=rt-exit', '--label', 'tslink.advertise-exit-node=true');
      await running(3, exitNode, 'rt-exit');
      const offered = await waitFor('control approving rt-exit as an exit node', async () => {
        const n = (await hs.nodes()).find((x) => x.givenName === 'rt-exit');
        return n?.approvedRoutes.includes('0.0.0.0/0') ? n : undefined;
      }, 30_000, 500);
      assert.ok(offered.availableRoutes.includes('0.0.0.0/0'), 'advertised by the node itself');
      const client = await run(1, 'rt-client', '--network', 'rtnet', '--label', 'tslink.hostname=rt-client', '--label', 'tslink.exit-node=rt-exit');
      await running(1, client, 'rt-client');
      const clientIp = await on(1, 'inspect', '-f', '{{(index .NetworkSettings.Networks "rtnet").IPAddress}}', client);
      // Every packet from the client to the internet host that its own host forwards is counted.
      const ns = ['netns', 'exec', 'tsw-n1', 'iptables', '-w'];
      await sh('ip', [...ns, '-N', 'E2E-LEAK']);
      await sh('ip', [...ns, '-A', 'E2E-LEAK', '-j', 'RETURN']);
      await sh('ip', [...ns, '-I', 'FORWARD', '1', '-s', clientIp, '-d', INTERNET, '-j', 'E2E-LEAK']);
      // Read from the rule itself (wherever it stands now), not from a position.
      const leaked = async () => {
        const rule = (await sh('ip', [...ns, '-v', '-S', 'FORWARD'])).stdout.split('\n').find((l) => l.includes(`-s ${clientIp}/32 -d ${INTERNET}/32`) && l.includes('-j E2E-LEAK'));
        return Number(/ -c (\d+) /.exec(rule ?? '')?.[1] ?? NaN);
      };
      const seen = await waitFor('rt-client reaching the internet through rt-exit', async () => {
        const r = await exec(1, client, `curl -s -m 5 ${whoAmI}`);
        return r.code === 0 ? r.stdout : undefined;
      }, 60_000, 1000);
      assert.equal(seen, '10.213.0.3', "the internet sees the exit node's host (behind its router), not the client's");
      await on(3, 'rm', '-f', exitNode);
      const gone = await exec(1, client, `curl -s -m 5 ${whoAmI}`);
      assert.notEqual(gone.code, 0, `with its exit node gone the request fails (got ${JSON.stringify(gone.stdout)})`);
      assert.equal(await leaked(), 0, "nothing from the client left by its own host's NAT, before or after the exit node went");
      // Item 3: the label changed (the container made again without it): the same node, straight out.
      const before = await hs.nodeNamed('rt-client');
      await on(1, 'rm', '-f', client);
      const again = await run(1, 'rt-client2', '--network', 'rtnet', '--label', 'tslink.hostname=rt-client');
      await running(1, again, 'rt-client again');
      assert.equal((await hs.nodeNamed('rt-client')).id, before.id, 'the same identity in control');
      assert.equal((await waitFor('rt-client straight out', async () => (await exec(1, again, `curl -s -m 5 ${whoAmI}`)).stdout || undefined, 30_000, 1000)), '10.213.0.1');
      await sh('ip', [...ns, '-D', 'FORWARD', '-s', clientIp, '-d', INTERNET, '-j', 'E2E-LEAK']);
      for (const c of [plain, again]) await on(1, 'rm', '-f', c);
    });

    it("a container routes a subnet only it reaches; a container on another host with accept-routes reaches it through it, one without does not", async () => {
      await on(1, 'network', 'create', '--internal', '--subnet', ROUTED_SUBNET, 'rtbehind');
      // A web server on the subnet that answers with the address it sees (busybox httpd, a CGI script).
      const server = await on(1, 'run', '-d', '--name', 'rt-server', '--network', 'rtbehind', '--ip', '10.77.0.10', IMAGE, 'sh', '-c',
        'mkdir -p /www/cgi-bin && printf "#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho -n \\$REMOTE_ADDR\\n" > /www/cgi-bin/ip && chmod +x /www/cgi-bin/ip && exec httpd -f -p 80 -h /www');
      const router = await on(1, 'create', '--name', 'rt-router', '--network', 'rtnet', '--label', 'tslink.hostname=rt-router', '--label', `tslink.advertise-routes=${ROUTED_SUBNET}`, IMAGE, 'sleep', '3600');
      await on(1, 'network', 'connect', '--ip', '10.77.0.2', 'rtbehind', router);
      await on(1, 'start', router);
      await running(1, router, 'rt-router');
      await waitFor('control approving the subnet route', async () => (await hs.nodes()).find((x) => x.givenName === 'rt-router')?.approvedRoutes.includes(ROUTED_SUBNET) || undefined, 30_000, 500);
      const user = await run(3, 'rt-user', '--network', 'rtnet', '--label', 'tslink.hostname=rt-user', '--label', 'tslink.accept-routes=true');
      const other = await run(3, 'rt-other', '--network', 'rtnet', '--label', 'tslink.hostname=rt-other');
      await running(3, user, 'rt-user');
      await running(3, other, 'rt-other');
      const url = 'http://10.77.0.10/cgi-bin/ip';
      const seen = await waitFor('rt-user reaching the subnet', async () => {
        const r = await exec(3, user, `curl -s -m 5 ${url}`);
        // busybox httpd writes an IPv4 peer as an IPv4-mapped IPv6 address: [::ffff:a.b.c.d]
        return r.code === 0 ? r.stdout.replace(/^\[::ffff:(.*)\]$/, '$1') : undefined;
      }, 60_000, 1000);
      assert.equal(seen, '10.77.0.2', "the server sees the subnet router's own address on its subnet");
      assert.notEqual((await exec(3, other, `curl -s -m 5 ${url}`)).code, 0, 'without accept-routes the subnet is out of reach');
      // On the subnet's own host, a tslink container does not get into an --internal network through the host either.
      const near = await run(1, 'rt-near', '--network', 'rtnet', '--label', 'tslink.hostname=rt-near');
      await running(1, near, 'rt-near');
      assert.notEqual((await exec(1, near, `curl -s -m 5 ${url}`)).code, 0, "Docker's --internal network stays closed to containers of the same host");
      for (const [n, c] of [[1, server], [1, router], [3, user], [3, other], [1, near]] as const) await on(n, 'rm', '-f', c);
      await on(1, 'network', 'rm', 'rtbehind');
    });
  });
});
