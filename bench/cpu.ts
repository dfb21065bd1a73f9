/**
 * Where the CPU goes, for BENCHMARKS.md's explanations: a process's own and its children's CPU
 * time from /proc, and a summary of a V8 CPU profile (`--cpu-prof`) by package and function.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** CPU ms of a process itself and of its children it has reaped (all short-lived commands). */
export function cpuMs(pid: number): { self: number; children: number } {
  // The command name may hold spaces: the fields start after the last ')'.
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(')').pop()!.trim().split(' ');
  const n = (i: number): number => Number(f[i - 3]) * TICK_MS; // field i (1-based) of proc(5)
  return { self: n(14) + n(15), children: n(16) + n(17) };
}

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }
interface Profile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[] }

export interface ProfileSummary {
  wallMs: number;
  busyMs: number;
  byArea: { area: string; ms: number }[];
  topFunctions: { fn: string; ms: number }[];
}

/** Where a frame's code lives: a package, one of tslink's modules, Node itself, or V8's own work. */
function area(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return 'node internals';
  const own = /\/dist\/(src\/.*)\.js$/.exec(url);
  return own ? `tslink ${own[1]}` : url;
}

/** Sums the self time of every profile in `dir` (written by `node --cpu-prof --cpu-prof-dir=dir`). */
export function summarizeProfiles(dir: string, top = 12): ProfileSummary {
  const areas = new Map<string, number>();
  const fns = new Map<string, number>();
  let wallMs = 0;
  let busyMs = 0;
  for (const file of readdirSync(dir).filter((n) => n.endsWith('.cpuprofile'))) {
    const p = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile;
    const wall = (p.endTime - p.startTime) / 1000;
    const perSample = p.samples.length ? wall / p.samples.length : 0;
    wallMs += wall;
    for (const node of p.nodes) {
      const ms = (node.hitCount ?? 0) * perSample;
      if (!ms || node.callFrame.functionName === '(idle)') continue;
      busyMs += ms;
      const a = area(node.callFrame.url, node.callFrame.functionName);
      areas.set(a, (areas.get(a) ?? 0) + ms);
      const name = `${node.callFrame.functionName || '(anonymous)'} ${a}:${node.callFrame.lineNumber + 1}`;
      fns.set(name, (fns.get(name) ?? 0) + ms);
    }
  }
  const sorted = (m: Map<string, number>): [string, number][] => [...m].sort((x, y) => y[1] - x[1]).slice(0, top);
  return {
    wallMs,
    busyMs,
    byArea: sorted(areas).map(([a, ms]) => ({ area: a, ms })),
    topFunctions: sorted(fns).map(([fn, ms]) => ({ fn, ms })),
  };
}
