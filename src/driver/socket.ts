import { connect } from 'node:net';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Resolves true when something accepts connections on the socket path. */
export function socketIsLive(path: string, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    const done = (live: boolean): void => {
      s.destroy();
      resolve(live);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.setTimeout(timeoutMs, () => done(false));
  });
}

/**
 * Makes the socket path ours: a stale file left by a killed instance is removed, a live one
 * (another instance serving) is refused, because two drivers answering one daemon corrupt state.
 */
export async function claimSocketPath(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  if (await socketIsLive(path)) {
    throw new Error(`tslink: another process is already serving ${path}; stop it first (or set TSLINK_SOCKET to another path)`);
  }
  await rm(path, { force: true });
}

export async function restrictSocket(path: string): Promise<void> {
  await chmod(path, 0o660);
}
