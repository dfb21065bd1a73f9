import { mkdir, open, rename, rm, readFile, readdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

let counter = 0;
/** The temp files of this process's writes under way: any other one is a killed write's. */
const inFlight = new Set<string>();

/**
 * A temp file of writeFileAtomic's (`.<pid>.<n>.tmp`) that no write of this process has under
 * way: a write a kill -9 interrupted, never renamed, so never data.
 */
export const isAbandonedTemp = (path: string): boolean => /^\.\d+\.\d+\.tmp$/.test(basename(path)) && !inFlight.has(path);

/**
 * Writes a file so that a crash at any point leaves either the old or the new content: temp file
 * in the same directory, rename. `durable` adds an fsync of the file and of the directory, so the
 * content also survives a power loss; it costs two journal commits (0.5 ms idle, tens of ms while
 * Docker writes too), so it is for what nothing would recreate (a network's record: Docker never
 * sends CreateNetwork again). A kill -9 of the plugin loses nothing either way (page cache).
 */
export async function writeFileAtomic(path: string, data: string, mode = 0o600, opts: { durable?: boolean } = {}): Promise<void> {
  const durable = opts.durable ?? true;
  const dir = dirname(path);
  const tmp = join(dir, `.${process.pid}.${++counter}.tmp`);
  inFlight.add(tmp);
  try {
    const fh = await open(tmp, 'w', mode);
    try {
      await fh.writeFile(data);
      await fh.chmod(mode); // the umask must not widen or narrow what we asked for
      if (durable) await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    // A full or read-only disk: no half-written temp file stays behind.
    await rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  } finally {
    inFlight.delete(tmp);
  }
  if (!durable) return;
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

export async function ensureDir(path: string, mode = 0o700): Promise<void> {
  await mkdir(path, { recursive: true, mode });
}

/** Reads every `*.json` in a directory; unreadable or corrupt files are reported, not fatal. */
export async function readJsonDir<T>(dir: string): Promise<{ items: (T & { file: string })[]; bad: { file: string; error: string }[] }> {
  const items: (T & { file: string })[] = [];
  const bad: { file: string; error: string }[] = [];
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { items, bad };
    throw e;
  }
  for (const name of names) {
    if (isAbandonedTemp(join(dir, name))) await rm(join(dir, name), { force: true });
    if (!name.endsWith('.json')) continue;
    const file = join(dir, name);
    try {
      const v = JSON.parse(await readFile(file, 'utf8')) as unknown;
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
      items.push({ ...(v as T), file: name });
    } catch (e) {
      bad.push({ file, error: (e as Error).message });
    }
  }
  return { items, bad };
}
