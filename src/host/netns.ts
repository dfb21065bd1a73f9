import { readFile, realpath } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

const resolvedDirs = new Map<string, string>();

/**
 * Where a sandbox path Docker sends is found from here. A managed plugin sees Docker's exec
 * root (/var/run/docker) at another path, mounted with propagation so that namespaces created
 * after the plugin started, even netns/ itself, show up.
 */
export function localSandboxPath(key: string, hostDockerRun: string | undefined): string {
  if (!hostDockerRun) return key;
  const m = /^(?:\/var)?\/run\/docker\/(.*)$/.exec(key);
  return m ? `${hostDockerRun.replace(/\/+$/, '')}/${m[1]}` : key;
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

/** The set of mount points now: one read of mountinfo answers for every pending sandbox. */
export async function mountPoints(mountinfo = '/proc/self/mountinfo'): Promise<Set<string>> {
  const text = await readFile(mountinfo, 'utf8');
  const points = new Set<string>();
  for (const line of text.split('\n')) {
    const field = line.split(' ')[4];
    if (field) points.add(field.replace(/\\040/g, ' '));
  }
  return points;
}
