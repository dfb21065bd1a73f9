import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** When a process started, as field 22 of /proc/<pid>/stat: with its pid, it names the process for good (pids are reused). */
export async function startTime(pid: number, proc = '/proc'): Promise<string | undefined> {
  const stat = await readFile(join(proc, String(pid), 'stat'), 'utf8').catch(() => undefined);
  // Field 22, counted after the command name, which may itself hold spaces and parentheses.
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}
