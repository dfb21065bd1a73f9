/** Turns bench/results-*.json into BENCHMARKS.md. */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../test/e2e/harness.js';

interface Result {
  engine: string;
  engineVersion: string;
  date: string;
  dockerRunMs: { tslink: { median: number; p90: number; n: number }; bridge: { median: number; p90: number; n: number }; ratio: number };
  joinHandlerMs: { median: number; p99: number; max: number; n: number };
  joinToReadyMs: { median: number; p99: number; n: number };
}

const f = (n: number): string => n.toFixed(1);
const results = readdirSync(join(ROOT, 'bench'))
  .filter((n) => /^results-.*\.json$/.test(n))
  .map((n) => JSON.parse(readFileSync(join(ROOT, 'bench', n), 'utf8')) as Result)
  .sort((a, b) => a.engine.localeCompare(b.engine));

const lines = [
  '# Benchmarks',
  '',
  'Made by `make bench` (`bench/run.ts`, then `bench/report.ts`) on this project\'s 2-core machine, with the plugin',
  'running from the working tree as a legacy plugin and the Tailscale test double. Medians and ratios',
  'come from runs interleaved in one session (tslink and bridge alternate), since the machine is noisy.',
  '',
  '| engine | `docker run -d` tslink median (p90) | bridge median (p90) | ratio tslink/bridge | Join handler median / p99 / max (n) | Join → ready for Tailscale median / p99 |',
  '|---|---|---|---|---|---|',
  ...results.map(
    (r) =>
      `| ${r.engineVersion} | ${f(r.dockerRunMs.tslink.median)} ms (${f(r.dockerRunMs.tslink.p90)}) | ${f(r.dockerRunMs.bridge.median)} ms (${f(r.dockerRunMs.bridge.p90)}) | ${r.dockerRunMs.ratio.toFixed(2)} | ${f(r.joinHandlerMs.median)} / ${f(r.joinHandlerMs.p99)} / ${f(r.joinHandlerMs.max)} ms (${r.joinHandlerMs.n}) | ${f(r.joinToReadyMs.median)} / ${f(r.joinToReadyMs.p99)} ms |`,
  ),
  '',
  'The Join handler time is Fastify\'s own measure of the call (the plugin logs it per call at debug',
  'level); it includes the bounded (≤ 200 ms) inference of the joined container from Docker\'s',
  'container list, and creating the veth pair, address and route with one `ip -batch`.',
  '',
  ...results.map((r) => `- ${r.engine}: measured ${r.date}`),
  '',
];
writeFileSync(join(ROOT, 'BENCHMARKS.md'), lines.join('\n'));
process.stdout.write(lines.join('\n'));
