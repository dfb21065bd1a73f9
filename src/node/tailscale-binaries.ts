import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type { Runner } from '../util/exec.js';

/** Where the plugin image bundles Tailscale (see plugin/Dockerfile and scripts/build-rootfs.sh). */
export const BUNDLED_TAILSCALE_DIR = '/usr/lib/tslink/tailscale';

export interface TailscaleBinaries {
  tailscale: string;
  tailscaled: string;
  version: string;
}

async function executable(p: string): Promise<boolean> {
  try {
    await access(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds `tailscale` and `tailscaled`: in TS_PATH when set (and only there: a wrong TS_PATH must
 * not silently fall back to another version), else the bundled ones, else PATH. Runs `tailscale
 * version` once to prove they work.
 */
export async function findTailscale(run: Runner, tsPath: string | undefined, env: NodeJS.ProcessEnv): Promise<TailscaleBinaries> {
  const dirs = tsPath ? [tsPath] : [BUNDLED_TAILSCALE_DIR, ...(env['PATH'] ?? '').split(delimiter).filter(Boolean)];
  for (const dir of dirs) {
    const tailscale = join(dir, 'tailscale');
    const tailscaled = join(dir, 'tailscaled');
    if (!(await executable(tailscale)) || !(await executable(tailscaled))) continue;
    const r = await run(tailscale, ['version'], { timeoutMs: 10_000, env });
    if (r.code !== 0) throw new Error(`${tailscale} version failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}`);
    return { tailscale, tailscaled, version: r.stdout.split('\n')[0]?.trim() ?? 'unknown' };
  }
  throw new Error(
    tsPath
      ? `no executable tailscale and tailscaled in TS_PATH=${tsPath}; point TS_PATH at the directory that holds both`
      : `tailscale and tailscaled were found neither in ${BUNDLED_TAILSCALE_DIR} nor on PATH; install the plugin from a published image, or rebuild it on a machine with Tailscale installed (make install bundles it), or set TS_PATH to a directory that holds both`,
  );
}
