import { spawn } from 'node:child_process';
import { scrubSecrets } from './log.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

/** The one way tslink runs a short-lived command; a narrow seam for tests. */
/**
 * The environment every child gets: just enough to find programs. The plugin's own environment
 * may hold TS_AUTHKEY, and no key may reach a child's environ.
 */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'] ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };
  for (const k of ['LANG', 'TZ']) if (process.env[k]) env[k] = process.env[k];
  return { ...env, ...extra };
}

export type Runner = (cmd: string, args: readonly string[], opts?: RunOptions) => Promise<RunResult>;

export class CommandError extends Error {
  constructor(
    readonly cmd: string,
    readonly args: readonly string[],
    readonly result: RunResult,
  ) {
    const detail = (result.stderr || result.stdout).trim();
    super(scrubSecrets(`${cmd} ${args.join(' ')} exited ${result.code}${detail ? `: ${detail}` : ''}`));
  }
}

export const runCommand: Runner = (cmd, args, opts = {}) =>
  new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ?? childEnv(),
      timeout: opts.timeoutMs ?? 30_000,
      killSignal: 'SIGKILL',
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8') + (signal ? `\nkilled by ${signal}` : ''),
      });
    });
    child.stdin.on('error', () => {
      /* a command that exits without reading its input is judged by its exit code */
    });
    child.stdin.end(opts.input ?? '');
  });

/** Runs and throws CommandError on a non-zero exit. */
export async function mustRun(run: Runner, cmd: string, args: readonly string[], opts?: RunOptions): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new CommandError(cmd, args, r);
  return r;
}
