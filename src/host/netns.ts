import { readFile, realpath } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

const resolvedDirs = new Map<string, string>();

declare const netnsBrand: unique symbol;
/** A path to a container's network namespace that came through `localSandboxPath`: safe to enter. */
export type NetnsPath = string & { readonly [netnsBrand]: true };

/**
 * The sandbox keys Docker gives containers: a file in its exec root's netns/ directory, named
 * by the sandbox ID's first 12 hex digits (moby's osl.GenerateKey). Nothing else is ever
 * entered: not /proc/1/ns/net (the host), not a file elsewhere, not a path with `..`.
 */
export const SANDBOX_KEY = /^(?:\/var)?\/run\/docker\/netns\/[0-9a-f]{12}$/;

/**
 * Where a sandbox path Docker sends is found from here. A managed plugin sees Docker's exec
 * root (/var/run/docker) at another path, mounted with propagation so that namespaces created
 * after the plugin started, even netns/ itself, show up. Throws on anything but a sandbox key.
 */
export function localSandboxPath(key: string, hostDockerRun: string | undefined): NetnsPath {
  if (!SANDBOX_KEY.test(key)) throw new Error(`tslink: ${JSON.stringify(key.slice(0, 100))} is not a Docker sandbox key`);
  if (!hostDockerRun) return key as NetnsPath;
  return `${hostDockerRun.replace(/\/+$/, '')}/netns/${key.slice(key.lastIndexOf('/') + 1)}` as NetnsPath;
}

/** Docker names the sandbox /var/run/...; the mount table says /run/... Compare resolved paths. */
export async function resolveSandboxPath(path: string): Promise<string> {
  const dir = dirname(path);
  let real = resolvedDirs.get(dir);
  if (!real) {
    try {
      real = await realpath(dir);
    } catch {
      real = dir.replace(/^\/var\/run\//, '/run/');
    }
    resolvedDirs.set(dir, real);
  }
  return join(real, basename(path));
}

/**
 * The network namespace mounts now (nsfs mount points): one read of mountinfo answers for every
 * pending sandbox, and a plain file at a sandbox path never counts as a namespace.
 */
export async function mountPoints(mountinfo = '/proc/self/mountinfo'): Promise<Set<string>> {
  const text = await readFile(mountinfo, 'utf8');
  const points = new Set<string>();
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const fsType = fields[fields.indexOf('-') + 1];
    const point = fields[4];
    if (point && fsType === 'nsfs') points.add(point.replace(/\\040/g, ' '));
  }
  return points;
}
