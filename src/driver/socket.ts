import { socketIsLive } from '../util/socket-probe.js';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

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
