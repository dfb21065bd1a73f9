/** What the benches read from the system and the plugin's log, shared by run.ts and base.ts. */
import { readFileSync } from 'node:fs';

/**
 * The container's Tailscale address, read from its namespace's /proc view (the local route of a
 * 100.x address): a file read, where `nsenter ip addr` every 2 ms spawned two processes that
 * competed for the CPU whose use is being measured.
 */
export function tailnetAddress(pid: string): Promise<string | undefined> {
  try {
    return Promise.resolve(/\|-- (100\.\d+\.\d+\.\d+)\n\s+\/32 host LOCAL/.exec(readFileSync(`/proc/${pid}/net/fib_trie`, 'utf8'))?.[1]);
  } catch {
    return Promise.resolve(undefined);
  }
}

/** The numeric `field` of every plugin log line that holds `marker` (e.g. each Join's `ms`). */
export function logNumbers(lines: string[], marker: string, field: string): number[] {
  return lines.filter((l) => l.includes(marker)).map((l) => Number((JSON.parse(l) as Record<string, unknown>)[field]));
}
