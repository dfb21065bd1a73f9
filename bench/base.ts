/**
 * This code beside an earlier build of itself, on the engine scripts/engine.sh started (never a
 * test). Figures from different days cannot be compared on this machine, whose speed moves by
 * half from one run to the next, so the earlier code runs here, interleaved with this code, in
 * rounds: the base, this code, and this code with the per-container work of the features that
 * came after the base turned off (the WireGuard port forwards, `TSLINK_WIREGUARD_PORTS=off`;
 * the name rules, `tslink.magicdns=false` on a lone container). Each round runs and removes
 * containers one at a time and reads the plugin's CPU, its reaped commands' CPU, its Join
 * handler's times, `docker run -d`'s wall time, and how long after `docker run` returned the
 * container's tailscale0 held its address; each round starts with another build. Both builds run this tree's test double: the plugins are what differ.
 *
 * The base defaults to faae7b6, the code issue 23 reviewed (BENCH_BASE=<rev> for another). It is
 * built in a git worktree of its own, beside node_modules of this tree, and removed after.
 * Writes bench/base-results-<engine>.json.
 */
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuMs } from './cpu.js';
import { logNumbers, tailnetAddress } from './probes.js';
import { DOUBLE_DIR, ENGINE, IMAGE, PluginProcess, ROOT, docker, mustDocker, percentile, sh, sleep, uniq, waitFor } from '../test/e2e/harness.js';

const BASE = process.env['BENCH_BASE'] ?? 'faae7b6';
const ROUNDS = 3;
const CONTAINERS = 12;
/** Long enough for the double's node to be up and its status written, so the CPU is the whole start. */
const SETTLE_MS = 1_500;

interface Variant {
  name: string;
  cli: string;
  env: Record<string, string>;
  labels: string[];
}

interface Round {
  pluginMs: number;
  commandsMs: number;
  joinP50Ms: number;
  dockerRunP50Ms: number;
  /** From `docker run -d` returning to the container's tailscale0 holding its address. */
  returnedToNodeUpP50Ms: number;
}

/** The base built, or undefined when this clone does not have it (a shallow clone, an export). */
async function buildBase(): Promise<{ cli: string; rev: string; remove: () => Promise<void> } | undefined> {
  const rev = (await sh('git', ['-C', ROOT, 'rev-parse', '--short', `${BASE}^{commit}`])).stdout.trim();
  if (!rev) return undefined;
  const tree = join(mkdtempSync(join(tmpdir(), 'tslink-base-')), rev);
  const add = await sh('git', ['-C', ROOT, 'worktree', 'add', '--detach', tree, rev]);
  if (add.code !== 0) throw new Error(`git worktree add: ${add.stderr}`);
  const remove = async (): Promise<void> => void (await sh('git', ['-C', ROOT, 'worktree', 'remove', '--force', tree]));
  symlinkSync(join(ROOT, 'node_modules'), join(tree, 'node_modules'));
  const tsc = await sh(join(ROOT, 'node_modules/.bin/tsc'), ['-p', tree], { timeoutMs: 300_000 });
  if (tsc.code !== 0) {
    await remove();
    throw new Error(`the base does not build: ${tsc.stdout}${tsc.stderr}`);
  }
  return { cli: join(tree, 'dist/src/cli.js'), rev, remove };
}

async function measure(v: Variant): Promise<Round> {
  const plugin = new PluginProcess(undefined, { TS_PATH: DOUBLE_DIR, LOG_LEVEL: 'debug', TSLINK_STATUS_POLL_MS: '30000', ...v.env }, v.cli);
  await plugin.start();
  const net = uniq('bench-base');
  try {
    await mustDocker('network', 'create', '-d', 'tslink', net);
    const runs: number[] = [];
    const nodeUp: number[] = [];
    const run = async (name: string): Promise<void> => {
      const t0 = performance.now();
      await mustDocker('run', '-d', '--name', name, '--network', net, '--label', `tslink.hostname=${name}`, ...v.labels.flatMap((l) => ['--label', l]), IMAGE, 'sleep', '60');
      const returned = performance.now();
      const pid = await mustDocker('inspect', '-f', '{{.State.Pid}}', name);
      await waitFor('tailscale0', () => tailnetAddress(pid), 10_000, 2);
      runs.push(returned - t0);
      nodeUp.push(performance.now() - returned);
      await sleep(Math.max(0, SETTLE_MS - (performance.now() - returned)));
      await mustDocker('rm', '-f', name);
    };
    await run(uniq('warm'));
    runs.length = nodeUp.length = 0;
    const joinsBefore = joinTimes(plugin).length;
    const c0 = cpuMs(plugin.child!.pid!);
    for (let i = 0; i < CONTAINERS; i++) await run(uniq('base'));
    await sleep(SETTLE_MS);
    const c1 = cpuMs(plugin.child!.pid!);
    return {
      pluginMs: (c1.self - c0.self) / CONTAINERS,
      commandsMs: (c1.children - c0.children) / CONTAINERS,
      joinP50Ms: percentile(joinTimes(plugin).slice(joinsBefore), 50),
      dockerRunP50Ms: percentile(runs, 50),
      returnedToNodeUpP50Ms: percentile(nodeUp, 50),
    };
  } finally {
    await docker('network', 'rm', net);
    await plugin.kill('SIGTERM');
  }
}

const joinTimes = (plugin: PluginProcess): number[] => logNumbers(plugin.log().split('\n'), '"call":"/NetworkDriver.Join"', 'ms');

async function main(): Promise<void> {
  const base = await buildBase();
  if (!base) {
    process.stderr.write(`bench/base.ts: ${BASE} is not a commit of this clone (a shallow clone lacks it): not measured\n`);
    return;
  }
  const variants: Variant[] = [
    { name: `base (${base.rev})`, cli: base.cli, env: {}, labels: [] },
    { name: 'this code', cli: join(ROOT, 'dist/src/cli.js'), env: {}, labels: [] },
    { name: 'this code, later features off', cli: join(ROOT, 'dist/src/cli.js'), env: { TSLINK_WIREGUARD_PORTS: 'off' }, labels: ['tslink.magicdns=false'] },
  ];
  const rounds: Record<string, Round[]> = Object.fromEntries(variants.map((v) => [v.name, []]));
  try {
    // Each round starts with another build: a build measured always first (or last) would carry
    // whatever the order does to the machine.
    for (let r = 0; r < ROUNDS; r++) {
      for (let i = 0; i < variants.length; i++) {
        const v = variants[(r + i) % variants.length]!;
        rounds[v.name]!.push(await measure(v));
      }
    }
  } finally {
    await base.remove();
  }
  const result = {
    engine: ENGINE,
    engineVersion: await mustDocker('version', '--format', '{{.Server.Version}}'),
    date: new Date().toISOString(),
    base: base.rev,
    /** The commit this code was measured at (the working tree may differ from it). */
    commit: (await sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'])).stdout.trim(),
    containersPerRound: CONTAINERS,
    rounds,
  };
  writeFileSync(join(ROOT, 'bench', `base-results-${ENGINE}.json`), JSON.stringify(result, null, 2) + '\n');
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
}

await main();
