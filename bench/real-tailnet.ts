/**
 * Benchmarks with the real Tailscale and headscale (issue 21), against the engine scripts/engine.sh
 * started. Never a test. Measures, on the suite's local tailnet (test/e2e/tailnet.ts):
 *   - `docker run -d` → the node `running` in tslink's status, and → control listing it online
 *     with an address (sequential runs; control is polled every 100 ms, so that figure is coarser);
 *   - RSS and CPU of each real tailscaled, idle after its login;
 *   - recovery of N real nodes after kill -9 of the plugin, the key deleted in control first.
 * Writes bench/real-results-<engine>.json; bench/report.ts adds it to BENCHMARKS.md.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ENGINE, IMAGE, PluginProcess, ROOT, docker, mustDocker, percentile, tailscaledProcesses, uniq, waitFor } from '../test/e2e/harness.js';
import { CONTROL_URL, Headscale, REAL_TS_DIR, TAILSCALED_ENV } from '../test/e2e/tailnet.js';

const RUNS = Number(process.env['BENCH_REAL_RUNS'] ?? 10);
const NODES = Number(process.env['BENCH_REAL_NODES'] ?? 50);
const RECOVERIES = Number(process.env['BENCH_REAL_RECOVERIES'] ?? 3);
const stats = (v: number[]) => ({ median: percentile(v, 50), p99: percentile(v, 99), max: Math.max(...v), n: v.length });
const procStat = (pid: number): { cpuMs: number; rssMb: number } => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const ticks = Number(f[11]) + Number(f[12]); // utime + stime (fields 14 and 15)
  const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
  return { cpuMs: ticks * 10, rssMb: rss };
};

async function main(): Promise<void> {
  const hs = new Headscale();
  await hs.start();
  const key = await hs.key({ reusable: true });
  const plugin = new PluginProcess(undefined, { TS_AUTHKEY: '', TS_PATH: REAL_TS_DIR, TSLINK_TAILSCALED_ENV: TAILSCALED_ENV });
  await plugin.start();
  const net = uniq('benchreal');
  await mustDocker('network', 'create', '-d', 'tslink', '--opt', `tslink.authkey=${key.key}`, '--opt', `tslink.loginserver=${CONTROL_URL}`, net);
  const names: string[] = [];
  const epOf = (c: string) => mustDocker('inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").EndpointID}}`, c);
  const statusOf = (ep: string): Record<string, unknown> | undefined => {
    try {
      return JSON.parse(readFileSync(join(plugin.dataDir, 'status', `${ep}.json`), 'utf8')) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  };
  try {
    const toRunning: number[] = [];
    const toControl: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const name = `bench-real-${i}`;
      names.push(name);
      const t0 = performance.now();
      await mustDocker('run', '-d', '--name', name, '--network', net, '--label', `tslink.hostname=br${i}`, IMAGE, 'sleep', '3600');
      const ep = await epOf(name);
      // The status file first (a file read every 10 ms); control only after, every 100 ms: a
      // headscale CLI process per poll would take CPU from what is being measured.
      const running = await waitFor(`br${i} running`, async () => (statusOf(ep)?.['state'] === 'running' ? performance.now() - t0 : undefined), 60_000, 10);
      await waitFor(`br${i} online in control`, async () => (await hs.nodes()).some((x) => x.givenName === `br${i}` && x.online && x.ipAddresses.length > 0), 60_000, 100);
      toRunning.push(running);
      toControl.push(performance.now() - t0);
    }
    // Idle cost per node: RSS now, CPU over 30 s of idling.
    const pids = await tailscaledProcesses(plugin.dataDir);
    const before = pids.map(procStat);
    await new Promise((r) => setTimeout(r, 30_000));
    const afterIdle = pids.map(procStat);
    const rssPerNode = afterIdle.reduce((a, s) => a + s.rssMb, 0) / pids.length;
    const cpuLoginPerNode = before.reduce((a, s) => a + s.cpuMs, 0) / pids.length;
    const idleCpuPerNodePerMin = afterIdle.reduce((a, s, i) => a + s.cpuMs - before[i]!.cpuMs, 0) / pids.length * 2;

    // Recovery of NODES real nodes after kill -9, with the key deleted in control.
    for (let i = RUNS; i < NODES; i++) {
      const name = `bench-real-${i}`;
      names.push(name);
      await mustDocker('run', '-d', '--name', name, '--network', net, '--label', `tslink.hostname=br${i}`, IMAGE, 'sleep', '3600');
    }
    const eps = await Promise.all(names.map(epOf));
    await waitFor(`${NODES} nodes running`, async () => eps.every((e) => statusOf(e)?.['state'] === 'running'), 300_000, 500);
    await hs.deleteKey(key.id);
    const nodesBefore = (await hs.nodes()).length;
    const recoveries: number[] = [];
    for (let r = 0; r < RECOVERIES; r++) {
      await plugin.kill('SIGKILL');
      const killedAt = Date.now();
      const t0 = performance.now();
      await plugin.start();
      await waitFor('all nodes running again', async () => eps.every((e) => {
        const s = statusOf(e);
        return s?.['state'] === 'running' && Date.parse(String(s['since'])) >= killedAt;
      }), 300_000, 100);
      recoveries.push(performance.now() - t0);
    }
    const result = {
      engine: ENGINE,
      engineVersion: (await docker('version', '--format', '{{.Server.Version}}')).stdout.trim(),
      date: new Date().toISOString(),
      dockerRunToRunningMs: stats(toRunning),
      dockerRunToControlOnlineMs: stats(toControl),
      tailscaledRssMb: rssPerNode,
      tailscaledLoginCpuMs: cpuLoginPerNode,
      tailscaledIdleCpuMsPerMin: idleCpuPerNodePerMin,
      nodes: NODES,
      recoveryMs: stats(recoveries),
      newNodesAfterRecovery: (await hs.nodes()).length - nodesBefore,
    };
    writeFileSync(join(ROOT, 'bench', `real-results-${ENGINE}.json`), JSON.stringify(result, null, 2) + '\n');
    console.log(JSON.stringify(result, null, 2));
  } finally {
    await docker('rm', '-f', ...names);
    await docker('network', 'rm', net);
    await plugin.kill('SIGTERM').catch(() => undefined);
    await hs.stop();
  }
}

await main();
