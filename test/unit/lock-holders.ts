import { spawn, type ChildProcess } from 'node:child_process';

/**
 * Processes that take StateDirLocks, for tests: another tslink, or many at once.
 *
 * A process of acquirers: argv is FILE COUNT DESCRIPTION [--spawn-sleep]. It says `ready`, waits
 * for a line on stdin, runs COUNT acquirers at once (each its own StateDirLock, so its own open
 * file description; DESCRIPTION is their holder text), prints one `won` or `lost {json}` line
 * per acquirer and then `done`, and holds whatever it won until stdin says anything more or
 * closes. With --spawn-sleep it then starts a `sleep 60` (as the plugin starts tailscaled) and
 * prints `child PID`.
 */
const ACQUIRER = `
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
const { StateDirLock } = await import(${JSON.stringify(new URL('../../src/util/file-lock.js', import.meta.url).href)});
const [file, count, desc, flag] = process.argv.slice(1);
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const locks = Array.from({ length: Number(count) }, () => new StateDirLock(file, '/proc', 'the race', desc));
process.stdout.write('ready\\n');
await lines.next();
const results = await Promise.all(locks.map((l) => l.acquire().then(() => 'won', (e) => 'lost ' + JSON.stringify({ message: e.message, pid: e.pid, held: e.constructor.name }))));
if (flag === '--spawn-sleep') process.stdout.write('child ' + spawn('sleep', ['60'], { stdio: 'ignore' }).pid + '\\n');
process.stdout.write(results.join('\\n') + '\\ndone\\n');
await lines.next();
process.exit(0);
`;

export interface Acquirers {
  child: ChildProcess;
  lines: string[];
  /** Resolves once the process has printed `line`. */
  said(line: string): Promise<void>;
  exited: Promise<void>;
}

/** `wrap`: a command that runs the process, such as `unshare --pid --fork`. */
export function startAcquirers(file: string, count: number, desc: string, flag = '', wrap: readonly string[] = []): Acquirers {
  const argv = [process.execPath, '--input-type=module', '-e', ACQUIRER, '--', file, String(count), desc, ...(flag ? [flag] : [])];
  const [cmd, ...args] = [...wrap, ...argv];
  const child = spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdin!.on('error', () => {
    /* a process killed by the test reads no more */
  });
  const lines: string[] = [];
  const waiting = new Map<string, Array<() => void>>();
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    const parts = (partial + s).split('\n');
    partial = parts.pop()!;
    for (const l of parts) {
      lines.push(l);
      for (const w of waiting.get(l) ?? []) w();
      waiting.delete(l);
    }
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const said = (line: string): Promise<void> =>
    lines.includes(line)
      ? Promise.resolve()
      : new Promise((r, j) => {
          waiting.set(line, [...(waiting.get(line) ?? []), r]);
          void exited.then(() => j(new Error(`acquirer process ${child.pid} exited before saying ${line}: ${lines.join(' | ')}`)));
        });
  return { child, lines, said, exited };
}

/** Another tslink holding `file`, its record naming it `desc`: stop it with stopAll or a signal. */
export async function holdLock(file: string, desc: string, flag = '', wrap: readonly string[] = []): Promise<Acquirers> {
  const holder = startAcquirers(file, 1, desc, flag, wrap);
  await holder.said('ready');
  holder.child.stdin!.write('go\n');
  await holder.said('done');
  if (!holder.lines.includes('won')) throw new Error(`the holder did not take ${file}: ${holder.lines.join(' | ')}`);
  return holder;
}

/** Ends their input, which lets them exit, and waits until they have. */
export async function stopAll(procs: readonly Acquirers[]): Promise<void> {
  for (const p of procs) p.child.stdin!.end();
  await Promise.all(procs.map((p) => p.exited));
}

