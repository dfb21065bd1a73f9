import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../util/log.js';
import { scrubSecrets } from '../util/log.js';
import { servePlan, type NodeSpec } from './node-config.js';
import type { TailscaleCli, TailscaleStatus } from './tailscale-cli.js';

/** What a node serves, and its Tailscale Service backend's drain: the CLI steps, apart from supervision. */

/** Why the spec's serving cannot work on this node, or undefined. */
export function servingProblem(spec: NodeSpec, status: TailscaleStatus): string | undefined {
  const noCerts = hasHttpsCapability(status) ? undefined : needsCertificates(spec);
  // Real `serve --https` on such a tailnet exits 0 having served nothing, or blocks.
  return noCerts && `tslink: ${noCerts}: this tailnet gives its nodes no HTTPS certificates (enable HTTPS in the Tailscale admin console; headscale has none); serve http or tcp instead`;
}

/** Applies the serve plan (a stale Service of an earlier configuration is cleared first). */
export async function applyServe(cli: TailscaleCli, spec: NodeSpec, staleService: string | undefined): Promise<void> {
  for (const step of servePlan(spec, staleService)) await cli.must(step.what, step.args);
}

/** Tells control this Service backend is going away, then waits (bounded) for it to notice. */
export async function drainService(cli: TailscaleCli, service: string, waitMs: number, log: Logger): Promise<void> {
  const r = await cli.call(['serve', 'drain', service], 10_000);
  if (r.code !== 0) {
    log.warn({ err: scrubSecrets(r.stderr || r.stdout) }, 'service drain failed');
    return;
  }
  log.info({ service }, 'service backend drained');
  await sleep(waitMs);
}

/** The serve rules that need the tailnet's HTTPS certificates, named as labels, or undefined. */
function needsCertificates(spec: NodeSpec): string | undefined {
  const rules = spec.serve.filter((r) => r.proto === 'https' || r.proto === 'tls-terminated-tcp');
  return rules.length ? rules.map((r) => `tslink.serve.${r.port}=${r.proto}`).join(', ') : undefined;
}

/** tailcfg.CapabilityHTTPS on the node itself: the tailnet issues it certificates. */
function hasHttpsCapability(st: TailscaleStatus): boolean {
  return (st.Self?.Capabilities ?? []).includes('https') || Object.prototype.hasOwnProperty.call(st.Self?.CapMap ?? {}, 'https');
}
