/**
 * Paths between containers on two hosts (issue 25), on the swarm bed with node 3 behind its home
 * router (test/e2e/swarm-tailnet-bed.ts), real Tailscale and headscale. Never a test. For one
 * container on node 1 and one on node 3, measured from node 3's side (it is behind the NAT):
 *   - round-trip time: ICMP, PINGS pings 0.1 s apart, the median of the per-ping times;
 *   - TCP throughput: an MB-megabyte download over HTTP (busybox httpd on node 1's side, curl on
 *     node 3's, which reports the speed), median of RUNS;
 * over the tailnet direct (the default), over the tailnet relayed (TS_DEBUG_ALWAYS_USE_DERP=1 for
 * every tailscaled), and between the two hosts themselves (no tailnet, the same NAT).
 * Writes bench/cross-host-results.json; bench/report.ts adds it to BENCHMARKS.md.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { DOCKER, ENGINE, IMAGE, ROOT, percentile, sh, waitFor } from '../test/e2e/harness.js';
import { CONTROL_URL, TAILSCALED_ENV, type Headscale } from '../test/e2e/tailnet.js';
import { BED_BASE, bedNodeCli, bedStatuses, onNode, setBedPlugin, startTailnetBed, stopTailnetBed, type NodeNo } from '../test/e2e/swarm-tailnet-bed.js';

const PINGS = Number(process.env['BENCH_XHOST_PINGS'] ?? 50);
const MB = Number(process.env['BENCH_XHOST_MB'] ?? 128);
const RUNS = Number(process.env['BENCH_XHOST_RUNS'] ?? 3);
const NODE1_ADDR = '10.213.0.1';
const PORT = 5201;

interface PathResult { rttMs: number; mbitPerS: number; runsMbit: number[]; how: string }

/** `cmd` for a side: a container on a node (docker exec) or the node's host namespace. */
type Side = { container: string; node: NodeNo } | { host: NodeNo };
const argv = (side: Side, script: string): [string, string[]] =>
  'container' in side
    ? [DOCKER, ['-H', `unix://${join(BED_BASE, `n${side.node}`, 'docker.sock')}`, 'exec', side.container, 'sh', '-c', script]]
    : ['ip', ['netns', 'exec', `tsw-n${side.host}`, 'busybox', 'sh', '-c', script]];

/** The same busybox tools on both: the test image's, or the host's busybox (Debian's has no `nc` of its own). */
const tool = (side: Side, name: string): string => ('container' in side ? name : `busybox ${name}`);

async function rtt(from: Side, to: string): Promise<number> {
  // The first packets of a fresh pair wait for a WireGuard handshake (measured: up to 5 s, one
  // retry of it); that is the path being set up, not its round-trip time.
  await waitFor(`a quick answer from ${to}`, async () => {
    const [c, a] = argv(from, `${tool(from, 'ping')} -c 1 -W 1 ${to}`);
    return (await sh(c, a, { timeoutMs: 10_000 })).code === 0 || undefined;
  }, 30_000, 200);
  const [cmd, args] = argv(from, `${tool(from, 'ping')} -c ${PINGS} -i 0.1 ${to}`);
  const r = await sh(cmd, args, { timeoutMs: 60_000 });
  const times = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  if (times.length < PINGS * 0.9) throw new Error(`ping ${to}: ${times.length} of ${PINGS} answered\n${r.stdout}${r.stderr}`);
  return percentile(times, 50);
}

/** Downloads of an MB-megabyte file from `server`'s busybox httpd by `client`'s curl, in Mbit/s (curl's own figure). */
async function throughput(server: Side, client: Side, to: string): Promise<number[]> {
  let dir = '/tmp/www';
  let script = `mkdir -p ${dir} && dd if=/dev/zero of=${dir}/big bs=1048576 count=${MB} 2>/dev/null && exec httpd -f -p ${PORT} -h ${dir}`;
  if (!('container' in server)) {
    dir = mkdtempSync(join(tmpdir(), 'tslink-xhost-'));
    writeFileSync(join(dir, 'big'), Buffer.alloc(MB * 1048576));
    script = `exec busybox httpd -f -p ${PORT} -h ${dir}`;
  }
  const [c, a] = argv(server, script);
  const httpd = spawn(c, a, { stdio: 'ignore' });
  try {
    const url = `http://${to}:${PORT}/big`;
    const curl = (): [string, string[]] => argv(client, `curl -s -o /dev/null -w '%{speed_download} %{size_download}' ${url}`);
    await waitFor(`${url} served`, async () => (await sh(...argv(client, `curl -s -o /dev/null -I ${url}`))).code === 0 || undefined, 60_000, 500);
    const runs: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const r = await sh(...curl(), { timeoutMs: 300_000 });
      const [speed, size] = r.stdout.trim().split(' ').map(Number);
      if (r.code !== 0 || size !== MB * 1048576) throw new Error(`curl ${url}: exit ${r.code}, ${size} bytes: ${r.stderr}`);
      runs.push((speed! * 8) / 1e6);
    }
    return runs;
  } finally {
    httpd.kill();
  }
}

async function measure(receiver: Side, sender: Side, to: string, how: string): Promise<PathResult> {
  const rttMs = await rtt(sender, to);
  const runsMbit = await throughput(receiver, sender, to);
  const r = { rttMs, mbitPerS: percentile(runsMbit, 50), runsMbit, how };
  process.stdout.write(`${how}: rtt ${rttMs.toFixed(3)} ms, ${r.mbitPerS.toFixed(0)} Mbit/s (${runsMbit.map((x) => x.toFixed(0)).join(', ')})\n`);
  return r;
}

/** One container on node 1 and one on node 3, running, and the path between them as tailscaled reports it. */
async function pair(hs: Headscale, tag: string): Promise<{ a: Side & { container: string }; b: Side & { container: string }; aIp: string; path: string }> {
  const key = await hs.key({ reusable: true });
  for (const n of [1, 2, 3] as const) await onNode(n, 'network', 'create', '--config-only', '-o', `tslink.authkey=${key.key}`, '-o', `tslink.loginserver=${CONTROL_URL}`, `${tag}conf`);
  await onNode(1, 'network', 'create', '-d', 'tslink:latest', '--scope', 'swarm', '--attachable', '--config-from', `${tag}conf`, `${tag}net`);
  const run = async (n: NodeNo) => ({ node: n, container: await onNode(n, 'run', '-d', '--network', `${tag}net`, '--label', `tslink.hostname=${tag}-${n}`, IMAGE, 'sleep', '3600') });
  const a = await run(1);
  const b = await run(3);
  const endpoint = async (s: { node: NodeNo; container: string }) =>
    waitFor(`${tag}-${s.node} running`, async () => bedStatuses(s.node).find((x) => x.container === s.container && x.state === 'running')?.endpoint, 90_000, 500);
  const [ea, eb] = [await endpoint(a), await endpoint(b)];
  const aIp = (await bedNodeCli(1, ea, ['ip', '-4'])).stdout.trim();
  // tailscale ping settles the path (it stops at the first direct pong) before anything is timed.
  const p = await bedNodeCli(3, eb, ['ping', '-c', '20', '--timeout', '1s', aIp]);
  const path = p.stdout.trim().split('\n').filter((l) => l.startsWith('pong')).pop() ?? p.stdout;
  return { a, b, aIp, path };
}

async function unpair(tag: string, containers: string[], nodes: NodeNo[]): Promise<void> {
  for (const [i, c] of containers.entries()) await onNode(nodes[i]!, 'rm', '-f', c);
  await waitFor(`${tag}net removable`, async () => ((await sh(DOCKER, ['-H', `unix://${join(BED_BASE, 'n1', 'docker.sock')}`, 'network', 'rm', `${tag}net`])).code === 0 || undefined), 90_000, 1000);
}

async function main(): Promise<void> {
  const hs = await startTailnetBed(ENGINE);
  try {
    const hosts = await measure({ host: 1 }, { host: 3 }, NODE1_ADDR, 'hosts (node 3 → node 1 through the router, no tailnet)');
    const d = await pair(hs, 'xd');
    if (!/ via \d+\.\d+\.\d+\.\d+:\d+ /.test(`${d.path} `)) throw new Error(`the default path is not direct: ${d.path}`);
    const direct = await measure(d.a, d.b, d.aIp, `containers over the tailnet, direct (${d.path.replace(/^pong from /, '')})`);
    await unpair('xd', [d.a.container, d.b.container], [1, 3]);
    await setBedPlugin([`TSLINK_TAILSCALED_ENV=${TAILSCALED_ENV} TS_DEBUG_ALWAYS_USE_DERP=1`]);
    const r = await pair(hs, 'xr');
    if (!/via DERP/.test(r.path)) throw new Error(`the forced relay path is not DERP: ${r.path}`);
    const relayed = await measure(r.a, r.b, r.aIp, `containers over the tailnet, relayed (${r.path.replace(/^pong from /, '')})`);
    await unpair('xr', [r.a.container, r.b.container], [1, 3]);
    const out = { engine: ENGINE, at: new Date().toISOString(), pings: PINGS, megabytes: MB, runs: RUNS, hosts, direct, relayed };
    writeFileSync(join(ROOT, 'bench', 'cross-host-results.json'), JSON.stringify(out, null, 2) + '\n');
  } finally {
    await stopTailnetBed(hs);
  }
}

await main();
