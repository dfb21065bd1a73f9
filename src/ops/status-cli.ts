import { readFile, readdir } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import type { EndpointView } from './endpoint-view.js';
import { parseNodeStatus, type NodeState } from '../node/status.js';
import { OPS_SOCKET } from './server.js';

/** What each troubled state means and what to do, in one line. */
const HINTS: Partial<Record<NodeState, string>> = {
  'logged-out': 'the auth key was refused or has expired (or the node was removed from the tailnet): give the network a new key (--opt tslink.authkey=...) or set TS_AUTHKEY, then restart the container',
  failed: 'the node cannot run as configured: read lastError; for a crash loop see logs/<endpoint>-tailscaled.log in the data directory',
  retrying: 'tailscaled exited and is restarted with backoff: read lastError and the node log',
  'waiting-for-container': 'waiting for Docker to name its container, or for the container holding its hostname to leave',
  'serving-pending': 'applying serve rules; persisting means tailscale serve fails: read lastError',
  starting: 'tailscaled is starting',
  stopped: 'the container left; the node is stopped',
};

export interface StatusReport {
  source: 'plugin' | 'status files';
  endpoints: EndpointView[];
}

/** Asks the running plugin over its operations socket. */
function fromSocket(socketPath: string): Promise<EndpointView[]> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: '/v1/endpoints', method: 'GET', timeout: 5000 }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        try {
          if (res.statusCode !== 200) throw new Error(`answered ${res.statusCode}`);
          const body: unknown = JSON.parse(text);
          const endpoints: unknown = typeof body === 'object' && body !== null && 'endpoints' in body ? body.endpoints : undefined;
          if (!Array.isArray(endpoints)) throw new Error('answered no endpoint list');
          // Each entry is a node status without tailscaledVersion (endpoint-view.ts).
          resolve(endpoints.map(parseNodeStatus));
        } catch (e) {
          reject(e as Error);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', reject);
    req.end();
  });
}

/** Reads the status files a plugin leaves, when it is not running. */
async function fromFiles(dataDir: string): Promise<EndpointView[]> {
  const dir = join(dataDir, 'status');
  const out: EndpointView[] = [];
  for (const name of await readdir(dir)) {
    if (!name.endsWith('.json')) continue;
    out.push(parseNodeStatus(JSON.parse(await readFile(join(dir, name), 'utf8'))));
  }
  return out;
}

export async function readStatus(dataDir: string): Promise<StatusReport> {
  try {
    return { source: 'plugin', endpoints: await fromSocket(join(dataDir, OPS_SOCKET)) };
  } catch {
    return { source: 'status files', endpoints: await fromFiles(dataDir) };
  }
}

const isProblem = (e: EndpointView): boolean => e.state !== 'running' && e.state !== 'stopped';

/**
 * Text from files and daemons made safe for a terminal: control characters (escape sequences
 * included) and C1 controls become one space each, so an error text cannot move the cursor,
 * recolour or retitle the operator's terminal (issue 22).
 */
export const forTerminal = (s: string): string => s.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ');

/** The table `tslink status` prints: problems first, each followed by its hint. */
export function formatStatus(r: StatusReport, now = Date.now()): string {
  const rows = [...r.endpoints].sort((a, b) => Number(isProblem(b)) - Number(isProblem(a)) || (a.hostname ?? '').localeCompare(b.hostname ?? ''));
  const ago = (since?: string): string => {
    if (!since) return '-';
    const s = Math.max(0, Math.round((now - Date.parse(since)) / 1000));
    return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
  };
  const table = [['CONTAINER', 'HOSTNAME', 'NETWORK', 'STATE', 'TAILSCALE IP', 'PEERS DIRECT/RELAYED', 'SINCE', 'LAST ERROR']];
  for (const e of rows) {
    const paths = e.peers ? `${e.peers.direct}/${e.peers.relayed}` : '-';
    const cells = [e.containerName ?? (e.container ?? '').slice(0, 12) ?? '-', e.hostname ?? '-', e.network.slice(0, 12), e.state, e.tailscaleIPs[0] ?? '-', paths, ago(e.since), (e.lastError ?? '').replace(/\s+/g, ' ').slice(0, 100)];
    table.push(cells.map(forTerminal));
  }
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  const lines = table.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
  const out = [lines[0]!];
  rows.forEach((e, i) => {
    out.push(lines[i + 1]!);
    if (isProblem(e) && HINTS[e.state]) out.push(`  hint: ${HINTS[e.state]}`);
  });
  const problems = rows.filter(isProblem).length;
  out.push('', `${rows.length} endpoints, ${problems} not running (from the ${r.source})`);
  return out.join('\n');
}

/** Exit code: 0 when every node runs, 1 when any does not. */
export const statusExitCode = (r: StatusReport): number => (r.endpoints.some(isProblem) ? 1 : 0);
