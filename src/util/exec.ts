import { spawn, type ChildProcess } from 'node:child_process';
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

interface Started {
  child: ChildProcess;
  result: Promise<RunResult>;
}

function startProcess(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv): Started {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (b: Buffer) => out.push(b));
  child.stderr!.on('data', (b: Buffer) => err.push(b));
  child.stdin!.on('error', () => {
    /* a command that exits without reading its input is judged by its exit code */
  });
  const result = new Promise<RunResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8') + (signal ? `\nkilled by ${signal}` : ''),
      }),
    );
  });
  result.catch(() => undefined);
  return { child, result };
}

/** Gives a started process its input and waits for it; SIGKILL after `timeoutMs` (default 30 s). */
async function feed(p: Started, opts: RunOptions): Promise<{ result: RunResult; timedOut: boolean }> {
  let timedOut = false;
  const killer = setTimeout(() => {
    timedOut = true;
    p.child.kill('SIGKILL');
  }, opts.timeoutMs ?? 30_000);
  p.child.stdin!.end(opts.input ?? '');
  try {
    return { result: await p.result, timedOut };
  } finally {
    clearTimeout(killer);
  }
}

/** The one way tslink runs a short-lived command; a narrow seam for tests. */
export const runCommand: Runner = async (cmd, args, opts = {}) =>
  (await feed(startProcess(cmd, args, opts.env ?? childEnv()), opts)).result;

/** Runs and throws CommandError on a non-zero exit. */
export async function mustRun(run: Runner, cmd: string, args: readonly string[], opts?: RunOptions): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new CommandError(cmd, args, r);
  return r;
}

/**
 * A Runner that keeps one process of `cmd args` started ahead, idle on its input, for a command
 * on a latency path: Join's `ip -batch -` then costs its own work (≈ 0.5 ms) instead of a spawn
 * from a ~100 MB Node.js process (≈ 3 ms, measured). Each process still runs one input and exits,
 * exactly as with `run`; the next is started a little later, off the caller's path. Other
 * commands, and calls that find no idle process (a burst), go to `run`.
 */
export class WarmRunner {
  private idle?: Started;
  private refill?: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly run: Runner,
    private readonly cmd: string,
    private readonly args: readonly string[],
    private readonly refillMs = 10,
  ) {
    this.start();
  }

  readonly runner: Runner = async (cmd, args, opts = {}) => {
    const p = this.idle;
    const same = cmd === this.cmd && args.length === this.args.length && args.every((a, i) => a === this.args[i]);
    if (!same || opts.env || !p || p.child.exitCode !== null || p.child.signalCode !== null) return this.run(cmd, args, opts);
    this.idle = undefined;
    this.scheduleRefill();
    try {
      const { result, timedOut } = await feed(p, opts);
      // Killed by someone else while idle: it never ran this input.
      if (p.child.signalCode !== null && !timedOut) return await this.run(cmd, args, opts);
      return result;
    } catch {
      return this.run(cmd, args, opts); // it could not start after all
    }
  };

  private start(): void {
    if (this.closed) return;
    try {
      this.idle = startProcess(this.cmd, this.args, childEnv());
    } catch {
      this.idle = undefined;
    }
  }

  private scheduleRefill(): void {
    clearTimeout(this.refill);
    this.refill = setTimeout(() => this.start(), this.refillMs);
    this.refill.unref();
  }

  /** Ends the idle process (it gets an empty input and exits). */
  close(): void {
    this.closed = true;
    clearTimeout(this.refill);
    this.idle?.child.stdin!.end('');
    this.idle = undefined;
  }
}
