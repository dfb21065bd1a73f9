import { access, constants, open } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type { Runner } from '../util/exec.js';

/** Where the plugin image bundles Tailscale (see plugin/Dockerfile and scripts/build-rootfs.sh). */
export const BUNDLED_TAILSCALE_DIR = '/usr/lib/tslink/tailscale';

export interface TailscaleBinaries {
  tailscale: string;
  tailscaled: string;
  version: string;
  /** tslink's own test double (test/double), never Tailscale: the plugin says so loudly. */
  isTestDouble: boolean;
}

/** The words every file of the test double opens with (test/double/README.md). */
export const TEST_DOUBLE_MARK = 'TEST DOUBLE of';

/** Whether a binary is tslink's test double: its first bytes carry the double's mark. */
export async function isTestDouble(path: string): Promise<boolean> {
  const f = await open(path, 'r').catch(() => undefined);
  if (!f) return false;
  try {
    const buf = Buffer.alloc(512);
    const { bytesRead } = await f.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead).toString('latin1').includes(TEST_DOUBLE_MARK);
  } finally {
    await f.close();
  }
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
    const isDouble = (await isTestDouble(tailscale)) || (await isTestDouble(tailscaled));
    return { tailscale, tailscaled, version: r.stdout.split('\n')[0]?.trim() ?? 'unknown', isTestDouble: isDouble };
  }
  throw new Error(
    tsPath
      ? `no executable tailscale and tailscaled in TS_PATH=${tsPath}; point TS_PATH at the directory that holds both`
      : `tailscale and tailscaled were found neither in ${BUNDLED_TAILSCALE_DIR} nor on PATH; install the plugin from a published image, or rebuild it on a machine with Tailscale installed (make install bundles it), or set TS_PATH to a directory that holds both`,
  );
}
