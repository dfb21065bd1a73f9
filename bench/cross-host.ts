/**
 * Paths between containers on two hosts (issue 25), on the swarm bed with node 3 behind its home
 * router (test/e2e/swarm-tailnet-bed.ts), real Tailscale and headscale. Never a test. For one
 * container on node 1 and one on node 3, measured from node 3's side (it is behind the NAT):
 *   - round-trip time: ICMP, PINGS pings 0.1 s apart, the median of the per-ping times;
 *   - TCP throughput: MB megabytes through busybox `nc`, timed from the sender's start to the
 *     receiver's end, median of RUNS;
 * over the tailnet direct (the default), over the tailnet relayed (TS_DEBUG_ALWAYS_USE_DERP=1 for
 * every tailscaled), and between the two hosts themselves (no tailnet, the same NAT).
 * Writes bench/cross-host-results.json; bench/report.ts adds it to BENCHMARKS.md.
 */
import { writeFileSync } from 'node:fs';
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
  const [cmd, args] = argv(from, `${tool(from, 'ping')} -c ${PINGS} -i 0.1 ${to}`);
  const r = await sh(cmd, args, { timeoutMs: 60_000 });
  const times = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  if (times.length < PINGS * 0.9) throw new Error(`ping ${to}: ${times.length} of ${PINGS} answered\n${r.stdout}${r.stderr}`);
  return percentile(times, 50);
}

async function throughput(receiver: Side, sender: Side, to: string): Promise<number> {
  const [rcmd, rargs] = argv(receiver, `${tool(receiver, 'nc')} -l -p ${PORT} > /dev/null`);
  const rx = spawn(rcmd, rargs, { stdio: 'ignore' });
  const done = new Promise<number>((resolve) => rx.on('exit', () => resolve(performance.now())));
  await new Promise((r) => setTimeout(r, 1000)); // the listener is up
  const t0 = performance.now();
  const [scmd, sargs] = argv(sender, `${tool(sender, 'dd')} if=/dev/zero bs=65536 count=${MB * 16} 2>/dev/null | ${tool(sender, 'nc')} ${to} ${PORT}`);
  const tx = await sh(scmd, sargs, { timeoutMs: 300_000 });
  if (tx.code !== 0) throw new Error(`sending to ${to}: ${tx.stderr}`);
  const t1 = await Promise.race([done, new Promise<number>((_, no) => setTimeout(() => no(new Error(`the receiver for ${to} never ended`)), 60_000))]);
  return (MB * 8 * 1.048576) / ((t1 - t0) / 1000);
}

async function measure(receiver: Side, sender: Side, to: string, how: string): Promise<PathResult> {
  const rttMs = await rtt(sender, to);
  const runsMbit: number[] = [];
  for (let i = 0; i < RUNS; i++) runsMbit.push(await throughput(receiver, sender, to));
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
