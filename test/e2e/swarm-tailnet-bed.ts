/**
 * The 3-node swarm bed (scripts/swarm-bed.sh) on the suite's local tailnet: the plugin bundling the
 * real Tailscale on each node, headscale reachable from every node as an internet host would be,
 * node 3 behind a home router's NAT. Used by the swarm-tailnet e2e and the cross-host bench.
 */
import { mkdtempSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DOCKER, ROOT, sh, waitFor } from './harness.js';
import { CTL_ADDR, CTL_NAMESPACE, Headscale, REAL_TS_DIR, TAILSCALED_ENV } from './tailnet.js';

export const BED = join(ROOT, 'scripts/swarm-bed.sh');
export const BED_BASE = '/var/lib/tslink-swarm';
export const BED_NODES = [1, 2, 3] as const;
export type NodeNo = (typeof BED_NODES)[number];
/** The control host's second address, on the bed's hub bridge. */
const CTL_ON_HUB = '10.213.0.253';

async function must(cmd: string, args: string[]): Promise<void> {
  const r = await sh(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

/** `docker` against node N. */
export async function onNode(n: NodeNo, ...args: string[]): Promise<string> {
  const r = await sh(DOCKER, ['-H', `unix://${join(BED_BASE, `n${n}`, 'docker.sock')}`, ...args], { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`docker (node ${n}) ${args.join(' ')} failed (${r.code}): ${r.stderr || r.stdout}`);
  return r.stdout.trim();
}

export interface BedStatus { container?: string; endpoint?: string; state?: string; lastError?: string; peers?: { direct: number; relayed: number } }

/** What node N's plugin reports for its endpoints. */
export function bedStatuses(n: NodeNo): BedStatus[] {
  const dir = join(BED_BASE, `n${n}`, 'plugins/tailscale/status');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as BedStatus);
}

/** `tailscale` against the daemon of an endpoint on node N. */
export function bedNodeCli(n: NodeNo, endpoint: string, args: string[], timeoutMs = 60_000) {
  return sh(join(REAL_TS_DIR, 'tailscale'), [`--socket=${join(BED_BASE, `n${n}`, 'plugins/tailscale/run', endpoint.slice(0, 12), 'tailscaled.sock')}`, ...args], { timeoutMs });
}

/** Builds the bed on `engine` with the real bundle, starts headscale and joins it to the hub; returns the control server. */
export async function startTailnetBed(engine: string, extraSettings: string[] = []): Promise<Headscale> {
  const bundle = join(mkdtempSync(join(tmpdir(), 'tslink-swarm-real-')), 'bundle');
  const built = await sh(join(ROOT, 'scripts/build-rootfs.sh'), [bundle], { timeoutMs: 180_000 });
  if (built.code !== 0) throw new Error(`build-rootfs.sh: ${built.stderr}`);
  const r = await sh(BED, ['up', engine, bundle], {
    timeoutMs: 300_000,
    env: { ...process.env, TSLINK_BED_NAT: '1', TSLINK_BED_SETTINGS: [`TSLINK_TAILSCALED_ENV=${TAILSCALED_ENV}`, 'TSLINK_STATUS_POLL_MS=5000', ...extraSettings].join('\n') },
  });
  process.stdout.write(`${r.stdout.trim()}\n`);
  if (r.code !== 0) throw new Error(`swarm-bed.sh up: ${r.stderr}`);
  const hs = new Headscale();
  await hs.start();
  // The control host on the hub too, and each node routes to it there: the nodes reach it as
  // hosts reach a control server on the internet, through their own address (and NAT).
  await must('ip', ['link', 'add', 'tslctl-hub', 'type', 'veth', 'peer', 'name', 'tslctl-h1']);
  await must('ip', ['link', 'set', 'tslctl-hub', 'netns', 'tsw-hub']);
  await must('ip', ['link', 'set', 'tslctl-h1', 'netns', CTL_NAMESPACE]);
  await must('ip', ['-n', 'tsw-hub', 'link', 'set', 'tslctl-hub', 'master', 'br0', 'up']);
  await must('ip', ['-n', CTL_NAMESPACE, 'addr', 'add', `${CTL_ON_HUB}/24`, 'dev', 'tslctl-h1']);
  await must('ip', ['-n', CTL_NAMESPACE, 'link', 'set', 'tslctl-h1', 'up']);
  // Replies to the hub leave from the address the nodes asked (10.214.0.2), not the hub leg's own:
  // a STUN reply from another address matches no NAT mapping and is dropped on the way back.
  await must('ip', ['-n', CTL_NAMESPACE, 'route', 'replace', '10.213.0.0/24', 'dev', 'tslctl-h1', 'src', CTL_ADDR]);
  // Node 3 reaches it through its router, like everything else beyond its LAN.
  for (const n of BED_NODES) await must('ip', ['-n', n === 3 ? 'tsw-r3' : `tsw-n${n}`, 'route', 'add', `${CTL_ADDR}/32`, 'via', CTL_ON_HUB]);
  return hs;
}

export async function stopTailnetBed(hs: Headscale): Promise<void> {
  await sh(BED, ['down'], { timeoutMs: 120_000 });
  await hs.stop();
}

/** Sets plugin settings on every node (disable, set, enable): a worker lets go of a removed swarm network a moment late. */
export async function setBedPlugin(settings: string[]): Promise<void> {
  for (const n of BED_NODES) {
    await waitFor(`the plugin disabled on node ${n}`, async () => ((await sh(DOCKER, ['-H', `unix://${join(BED_BASE, `n${n}`, 'docker.sock')}`, 'plugin', 'disable', 'tslink:latest'])).code === 0 || undefined), 60_000, 1000);
    await onNode(n, 'plugin', 'set', 'tslink:latest', ...settings);
    await onNode(n, 'plugin', 'enable', 'tslink:latest');
  }
}
