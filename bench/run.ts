/**
 * Benchmarks against the engine that scripts/engine.sh started (not a timed test):
 *   - the Join handler's own time over 100 joins (from the plugin's per-call log lines),
 *   - `docker run -d` wall time on a tslink network versus Docker's bridge, 20 each, interleaved.
 * Writes bench/results-<engine>.json; bench/report.ts turns all results into BENCHMARKS.md.
 *   node dist/bench/run.js
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DOUBLE_DIR, ENGINE, IMAGE, PluginProcess, ROOT, docker, mustDocker, percentile, uniq } from '../test/e2e/harness.js';

const median = (v: number[]): number => percentile(v, 50);

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** One numeric field from the plugin's JSON log lines that contain `marker`. */
function logNumbers(lines: string[], marker: string, field: string): number[] {
  return lines.filter((l) => l.includes(marker)).map((l) => Number((JSON.parse(l) as Record<string, unknown>)[field]));
}

async function main(): Promise<void> {
  const plugin = new PluginProcess(undefined, { TS_PATH: DOUBLE_DIR, LOG_LEVEL: 'debug' });
  await plugin.start();
  const tsnet = uniq('bench-ts');
  const brnet = uniq('bench-br');
  await mustDocker('network', 'create', '-d', 'tslink', tsnet);
  await mustDocker('network', 'create', brnet);
  const runs: Record<'tslink' | 'bridge', number[]> = { tslink: [], bridge: [] };
  try {
    // Warm-up: first runs pay for caches on both sides.
    for (const n of [tsnet, brnet]) {
      const c = uniq('warm');
      await mustDocker('run', '-d', '--name', c, '--network', n, IMAGE, 'sleep', '60');
      await mustDocker('rm', '-f', c);
    }
    for (let i = 0; i < 20; i++) {
      for (const [kind, n] of (i % 2 ? [['bridge', brnet], ['tslink', tsnet]] : [['tslink', tsnet], ['bridge', brnet]]) as ['tslink' | 'bridge', string][]) {
        const c = uniq(kind);
        runs[kind].push(await timed(() => mustDocker('run', '-d', '--name', c, '--network', n, '--label', `tslink.hostname=bench-${i}`, IMAGE, 'sleep', '60')));
        await mustDocker('rm', '-f', c);
      }
    }
    const before = plugin.log().length;
    for (let i = 0; i < 100; i++) {
      const c = uniq('join');
      await mustDocker('run', '-d', '--name', c, '--network', tsnet, '--label', `tslink.hostname=join-${i % 10}`, IMAGE, 'sleep', '60');
      await mustDocker('rm', '-f', c);
    }
    const lines = plugin.log().slice(before).split('\n');
    const joins = logNumbers(lines, '"call":"/NetworkDriver.Join"', 'ms');
    const ready = logNumbers(lines, '"endpoint ready for tailscale"', 'sinceJoinMs');
    const result = {
      engine: ENGINE,
      engineVersion: await mustDocker('version', '--format', '{{.Server.Version}}'),
      date: new Date().toISOString(),
      dockerRunMs: {
        tslink: { median: median(runs.tslink), p90: percentile(runs.tslink, 90), n: runs.tslink.length },
        bridge: { median: median(runs.bridge), p90: percentile(runs.bridge, 90), n: runs.bridge.length },
        ratio: median(runs.tslink) / median(runs.bridge),
      },
      joinHandlerMs: { median: median(joins), p99: percentile(joins, 99), max: Math.max(...joins), n: joins.length },
      joinToReadyMs: { median: median(ready), p99: percentile(ready, 99), n: ready.length },
    };
    writeFileSync(join(ROOT, 'bench', `results-${ENGINE}.json`), JSON.stringify(result, null, 2) + '\n');
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } finally {
    await docker('network', 'rm', tsnet, brnet);
    await plugin.kill('SIGTERM');
  }
}

await main();
