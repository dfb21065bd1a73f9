/** Turns bench/results-*.json into BENCHMARKS.md, with each goal beside its figure. */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../test/e2e/harness.js';

interface Stats { median: number; p99: number; max: number; n: number }
interface Result {
  engine: string;
  engineVersion: string;
  date: string;
  rssIdleMb: number;
  dockerRunMs: { tslink: Stats; bridge: Stats; ratio: number };
  dockerRunToNodeUpMs: Stats;
  dockerRunReturnToNodeUpMs?: Stats;
  joinHandlerMs: Stats;
  joinToReadyMs: Stats;
  churn100Ms: { tslink: number; bridge: number; ratio: number; pairRatios?: number[] };
  burst50ToAllRunningMs: number;
  rss50NodesMb: number;
  recovery50Ms: Stats;
  rss100EndpointsMb: number;
  rss1000EndpointsMb: number;
  deleteNetwork10000EndpointsMs: number;
  createNetworkUnderChurnMs: Stats;
  cpuPerContainerMs?: { plugin: number; commands: number };
  recovery50CpuMs?: { plugin: number; commands: number };
  profile?: { containers: number; wallMs: number; pluginCpuMs: number; commandsCpuMs: number };
  profileSummary?: { wallMs: number; busyMs: number; byArea: { area: string; ms: number }[]; topFunctions: { fn: string; ms: number }[] };
}

const f = (n: number, d = 1): string => n.toFixed(d);
const results = readdirSync(join(ROOT, 'bench'))
  .filter((n) => /^results-.*\.json$/.test(n))
  .map((n) => JSON.parse(readFileSync(join(ROOT, 'bench', n), 'utf8')) as Result)
  .filter((r) => r.churn100Ms !== undefined)
  .sort((a, b) => a.engine.localeCompare(b.engine));

const met = (ok: boolean): string => (ok ? 'met' : '**missed**');
const perEndpointKb = (r: Result): number => ((r.rss1000EndpointsMb - r.rss100EndpointsMb) * 1024) / 900;
const rows: [string, string, (r: Result) => string][] = [
  ['`docker run -d` wall, median (tslink / bridge)', '≤ 1.05× bridge', (r) => `${f(r.dockerRunMs.tslink.median)} / ${f(r.dockerRunMs.bridge.median)} ms = ${f(r.dockerRunMs.ratio, 2)}× (${met(r.dockerRunMs.ratio <= 1.05)})`],
  ['Join handler p50 / p99 (plugin\'s own timing, n)', '≤ 5 / ≤ 20 ms', (r) => `${f(r.joinHandlerMs.median)} / ${f(r.joinHandlerMs.p99)} ms (${r.joinHandlerMs.n}) (${met(r.joinHandlerMs.median <= 5 && r.joinHandlerMs.p99 <= 20)})`],
  ['`docker run` → tailscale0 up (double), p50 / p99', 'p50 ≤ 100 ms', (r) => `${f(r.dockerRunToNodeUpMs.median)} / ${f(r.dockerRunToNodeUpMs.p99)} ms (${met(r.dockerRunToNodeUpMs.median <= 100)})`],
  ['`docker run` returned → tailscale0 up (double), p50 / p99', 'p50 ≤ 100 ms (the goal read this way)', (r) => (r.dockerRunReturnToNodeUpMs ? `${f(r.dockerRunReturnToNodeUpMs.median)} / ${f(r.dockerRunReturnToNodeUpMs.p99)} ms (${met(r.dockerRunReturnToNodeUpMs.median <= 100)})` : 'not measured')],
  ['Join → namespace ready, p50 / p99', '—', (r) => `${f(r.joinToReadyMs.median)} / ${f(r.joinToReadyMs.p99)} ms`],
  ['churn of 100, 10 at a time (tslink / bridge)', '≤ 1.2× bridge', (r) => `${f(r.churn100Ms.tslink / 1000)} / ${f(r.churn100Ms.bridge / 1000)} s = ${f(r.churn100Ms.ratio, 2)}×${r.churn100Ms.pairRatios ? `, pairs ${f(Math.min(...r.churn100Ms.pairRatios), 2)}–${f(Math.max(...r.churn100Ms.pairRatios), 2)}×` : ''} (${met(r.churn100Ms.ratio <= 1.2)})`],
  ['burst of 50 `docker run` → all nodes running', '—', (r) => `${f(r.burst50ToAllRunningMs / 1000, 2)} s`],
  ['recovery of 50 nodes after kill -9, median of 5 (p99, max)', '≤ 3 s (issue 13: ≤ 5 s)', (r) => `${f(r.recovery50Ms.median / 1000, 2)} s (${f(r.recovery50Ms.p99 / 1000, 2)}, ${f(r.recovery50Ms.max / 1000, 2)}) (${met(r.recovery50Ms.median <= 3000)})`],
  ['plugin RSS idle / 100 / 1,000 endpoints', '≤ 60 MB + ≤ 150 KB per endpoint', (r) => `${f(r.rssIdleMb)} / ${f(r.rss100EndpointsMb)} / ${f(r.rss1000EndpointsMb)} MB, ${f(perEndpointKb(r))} KB per endpoint (${met(r.rssIdleMb <= 60 && perEndpointKb(r) <= 150)})`],
  ['plugin RSS with 50 running nodes (tailscaled excluded)', '—', (r) => `${f(r.rss50NodesMb)} MB`],
  ['DeleteNetwork with 10,000 endpoints', '< 10 s', (r) => `${f(r.deleteNetwork10000EndpointsMs / 1000, 2)} s (${met(r.deleteNetwork10000EndpointsMs < 10_000)})`],
  ['CPU per tslink container run + removed: plugin / commands it ran (ip, nsenter, the double)', '—', (r) => (r.cpuPerContainerMs ? `${f(r.cpuPerContainerMs.plugin)} / ${f(r.cpuPerContainerMs.commands)} ms` : 'not measured')],
  ['CPU of one recovery of 50 nodes: plugin / commands finished', '—', (r) => (r.recovery50CpuMs ? `${f(r.recovery50CpuMs.plugin)} / ${f(r.recovery50CpuMs.commands)} ms` : 'not measured')],
  ['CreateNetwork p50 / p99 while 20 networks churn', 'p99 < 50 ms', (r) => `${f(r.createNetworkUnderChurnMs.median)} / ${f(r.createNetworkUnderChurnMs.p99)} ms (${met(r.createNetworkUnderChurnMs.p99 < 50)})`],
];

const lines = [
  '# Benchmarks',
  '',
  'Made by `make bench` (`bench/run.ts`, `bench/base.ts`, `bench/real-tailnet.ts`, `bench/cross-host.ts`, then `bench/report.ts`) on this project\'s 2-core, 24 GiB machine, with',
  'the plugin running from the working tree as a legacy plugin and the Tailscale test double. Each tslink figure',
  'is measured in the same run as its bridge counterpart, interleaved, since the machine is noisy. Benchmarks',
  'are not tests: nothing here can fail `make test`.',
  '',
  `| figure | goal | ${results.map((r) => `Docker ${r.engineVersion}`).join(' | ')} |`,
  `|---|---|${results.map(() => '---').join('|')}|`,
  ...rows.map(([name, goal, cell]) => `| ${name} | ${goal} | ${results.map(cell).join(' | ')} |`),
  '',
  ...results.map((r) => `- ${r.engine}: measured ${r.date}`),
  '',
];
// The profile's evidence: where the plugin's own CPU went over 30 `docker run` + `rm`.
for (const r of results) {
  const p = r.profileSummary;
  if (!p || !r.profile) continue;
  lines.push(
    `### CPU profile of the plugin, Docker ${r.engineVersion} (\`--cpu-prof\`, ${r.profile.containers} containers run and removed)`,
    '',
    `Wall ${f(r.profile.wallMs / 1000, 2)} s; the plugin's own CPU ${f(r.profile.pluginCpuMs)} ms (${f(r.profile.pluginCpuMs / r.profile.containers)} ms per container); ` +
      `the commands it ran ${f(r.profile.commandsCpuMs)} ms (${f(r.profile.commandsCpuMs / r.profile.containers)} ms per container). Busy time in the profile by where the code lives:`,
    '',
    '| where | ms | share of busy |',
    '|---|---|---|',
    ...p.byArea.map((a) => `| ${a.area} | ${f(a.ms)} | ${f((100 * a.ms) / p.busyMs)} % |`),
    '',
    'Top functions by self time: ' + p.topFunctions.slice(0, 8).map((t) => `\`${t.fn}\` ${f(t.ms)} ms`).join('; ') + '.',
    '',
  );
}
// This code beside the base build, interleaved in rounds (bench/base.ts).
interface BaseRound { pluginMs: number; commandsMs: number; joinP50Ms: number; dockerRunP50Ms: number; returnedToNodeUpP50Ms: number }
interface BaseResult { engine: string; engineVersion: string; date: string; base: string; commit?: string; containersPerRound: number; rounds: Record<string, BaseRound[]> }
const baseResults = readdirSync(join(ROOT, 'bench'))
  .filter((n) => /^base-results-.*\.json$/.test(n))
  .map((n) => JSON.parse(readFileSync(join(ROOT, 'bench', n), 'utf8')) as BaseResult)
  .sort((a, b) => a.engine.localeCompare(b.engine));
if (baseResults.length) {
  const mid = (v: number[]): number => [...v].sort((x, y) => x - y)[Math.floor((v.length - 1) / 2)]!;
  const cell = (rs: BaseRound[], k: keyof BaseRound): string => `${f(mid(rs.map((r) => r[k])))} (${rs.map((r) => f(r[k], 0)).join(', ')})`;
  lines.push(`## This code beside the code issue 23 reviewed (\`bench/base.ts\`)`, '',
    'The base build runs here, in the same run as this code, in interleaved rounds; each round runs and removes ' +
    `${baseResults[0]!.containersPerRound} containers one at a time (test double). "Later features off": the WireGuard port forwards ` +
    '(`TSLINK_WIREGUARD_PORTS=off`) and the name rules (`tslink.magicdns=false`), the per-container work the base did not have. ' +
    'Each cell: the median of the rounds, then every round.', '');
  for (const b of baseResults) {
    lines.push(`Docker ${b.engineVersion} (${b.date.slice(0, 10)}${b.commit ? `, this code at ${b.commit}` : ''}):`, '',
      '| build | plugin CPU per container, ms | its commands\' CPU per container, ms | Join handler p50, ms | `docker run -d` p50, ms | returned → tailscale0 up p50, ms |', '|---|---|---|---|---|---|');
    for (const [name, rs] of Object.entries(b.rounds)) lines.push(`| ${name} | ${(['pluginMs', 'commandsMs', 'joinP50Ms', 'dockerRunP50Ms', 'returnedToNodeUpP50Ms'] as const).map((k) => cell(rs, k)).join(' | ')} |`);
    lines.push('');
  }
}
// Real Tailscale and headscale (bench/real-tailnet.ts), beside the double's figures of the same engine.
interface RealResult {
  engine: string; engineVersion: string; date: string;
  dockerRunToRunningMs: Stats; dockerRunToControlOnlineMs: Stats;
  tailscaledRssMb: number; tailscaledLoginCpuMs: number; tailscaledIdleCpuMsPerMin: number;
  nodes: number; recoveryMs: Stats; newNodesAfterRecovery: number;
}
const real = readdirSync(join(ROOT, 'bench'))
  .filter((n) => /^real-results-.*\.json$/.test(n))
  .map((n) => JSON.parse(readFileSync(join(ROOT, 'bench', n), 'utf8')) as RealResult)
  .sort((a, b) => a.engine.localeCompare(b.engine));
if (real.length) {
  lines.push('## Real Tailscale 1.102.5 and headscale v0.29.2 (`bench/real-tailnet.ts`)', '',
    'The suite\'s local tailnet: headscale with its embedded DERP in a namespace of its own, one real tailscaled per container. ' +
    'The double\'s figures are from the table above, same engine.', '',
    `| figure | ${real.map((r) => `Docker ${r.engine} (${r.date.slice(0, 10)})`).join(' | ')} |`, `|---|${real.map(() => '---|').join('')}`);
  const double = (engine: string): Result | undefined => results.find((r) => r.engine === engine);
  const realRows: [string, (r: RealResult) => string][] = [
    ['`docker run` → node `running` (status), p50 / p99 (n)', (r) => `${f(r.dockerRunToRunningMs.median)} / ${f(r.dockerRunToRunningMs.p99)} ms (${r.dockerRunToRunningMs.n}); double: ${double(r.engine) ? `${f(double(r.engine)!.dockerRunToNodeUpMs.median)} ms` : '—'}`],
    ['`docker run` → control lists the node online, p50 / p99', (r) => `${f(r.dockerRunToControlOnlineMs.median)} / ${f(r.dockerRunToControlOnlineMs.p99)} ms`],
    ['RSS per tailscaled, idle after login', (r) => `${f(r.tailscaledRssMb)} MB`],
    ['CPU per tailscaled: start and login / idle per minute', (r) => `${f(r.tailscaledLoginCpuMs, 0)} ms / ${f(r.tailscaledIdleCpuMsPerMin, 0)} ms`],
    ['recovery of N nodes after kill -9, key deleted in control, median (runs)', (r) => `${r.nodes} nodes: ${f(r.recoveryMs.median / 1000, 2)} s (${r.recoveryMs.n}); double, 50 nodes: ${double(r.engine) ? `${f(double(r.engine)!.recovery50Ms.median / 1000, 2)} s` : '—'}`],
    ['new nodes in control after the recoveries', (r) => String(r.newNodesAfterRecovery)],
  ];
  for (const [name, fn] of realRows) lines.push(`| ${name} | ${real.map(fn).join(' | ')} |`);
  lines.push('');
}
// Paths between containers on two hosts (bench/cross-host.ts, issue 25).
interface PathFigures { rttMs: number; mbitPerS: number; runsMbit: number[]; how: string }
interface CrossHost { engine: string; at: string; pings: number; megabytes: number; runs: number; hosts: PathFigures; direct: PathFigures; relayed: PathFigures }
const xhostFile = join(ROOT, 'bench', 'cross-host-results.json');
if (existsSync(xhostFile)) {
  const x = JSON.parse(readFileSync(xhostFile, 'utf8')) as CrossHost;
  lines.push('## Containers on two hosts: direct, relayed, and the hosts themselves (`bench/cross-host.ts`)', '',
    `The swarm test bed on Docker ${x.engine} (${x.at.slice(0, 10)}): node 3 behind a home router's NAT, one container on node 1 and one on node 3, ` +
    `real Tailscale, headscale's DERP on the hub. Round-trip time: median of ${x.pings} ICMP pings from node 3's side. ` +
    `Throughput: a ${x.megabytes} MB HTTP download (busybox httpd on node 1's side, curl on node 3's), median of ${x.runs}. ` +
    'All on one 2-core machine: the tailnet figures are bounded by WireGuard\'s CPU, the relayed ones also by the DERP server\'s.', '',
    '| path | round trip | throughput | ratio to the hosts\' throughput |', '|---|---|---|---|');
  for (const p of [x.hosts, x.direct, x.relayed]) lines.push(`| ${p.how} | ${f(p.rttMs, 3)} ms | ${f(p.mbitPerS, 0)} Mbit/s (${p.runsMbit.map((v) => f(v, 0)).join(', ')}) | ${f(p.mbitPerS / x.hosts.mbitPerS, 3)} |`);
  lines.push('', `Direct against relayed: ${f(x.direct.mbitPerS / x.relayed.mbitPerS, 1)}× the throughput, ${f(x.relayed.rttMs / x.direct.rttMs, 2)}× less round-trip time (the relay here is on the same machine; a real DERP region adds its distance).`, '');
}
const notes = join(ROOT, 'bench', 'NOTES.md');
let extra = '';
try {
  extra = readFileSync(notes, 'utf8');
} catch {
  /* no notes */
}
writeFileSync(join(ROOT, 'BENCHMARKS.md'), lines.join('\n') + (extra ? `\n${extra}` : ''));
process.stdout.write(lines.join('\n'));
