import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { WarmRunner, runCommand, type Runner } from '../../src/util/exec.js';

const SCRIPT = ['-c', 'read x; echo "got $x"; echo warn >&2; exit 3'];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const gone = (pid: number): boolean => !existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');

function counting(): { run: Runner; calls: string[] } {
  const calls: string[] = [];
  return { calls, run: (cmd, args, opts) => (calls.push(`${cmd} ${args.join(' ')}`), runCommand(cmd, args, opts)) };
}

describe('commands started ahead', () => {
  it('answers exactly as a fresh run would, from a process started before the call', async () => {
    const { run, calls } = counting();
    const w = new WarmRunner(run, 'sh', SCRIPT, 5);
    const want = await runCommand('sh', SCRIPT, { input: 'hello\n' });
    assert.deepEqual(await w.runner('sh', SCRIPT, { input: 'hello\n' }), want);
    assert.deepEqual(want, { code: 3, stdout: 'got hello\n', stderr: 'warn\n' });
    assert.deepEqual(calls, [], 'no fresh process was needed');
    await sleep(30);
    assert.deepEqual(await w.runner('sh', SCRIPT, { input: 'again\n' }), { code: 3, stdout: 'got again\n', stderr: 'warn\n' });
    assert.deepEqual(calls, [], 'the next one was started ahead too');
    w.close();
  });

  it('runs other commands, and callers that find no idle process, the usual way', async () => {
    const { run, calls } = counting();
    const w = new WarmRunner(run, 'sh', SCRIPT, 50);
    const results = await Promise.all([1, 2, 3].map((i) => w.runner('sh', SCRIPT, { input: `${i}\n` })));
    assert.deepEqual(results.map((r) => r.stdout), ['got 1\n', 'got 2\n', 'got 3\n']);
    assert.equal(calls.length, 2, 'one idle process served the first of three at once');
    assert.equal((await w.runner('echo', ['hi'])).stdout, 'hi\n');
    assert.equal(calls.length, 3);
    w.close();
  });

  it('does not answer with a process that was killed while idle, and leaves none after close', async () => {
    const { run, calls } = counting();
    const w = new WarmRunner(run, 'sh', SCRIPT, 5);
    const idle = (w as unknown as { idle: { child: { pid: number; kill(s: string): void } } }).idle.child;
    idle.kill('SIGKILL');
    await sleep(20);
    assert.equal((await w.runner('sh', SCRIPT, { input: 'x\n' })).stdout, 'got x\n');
    assert.equal(calls.length, 1, 'the dead one was replaced by a fresh run');
    await sleep(20);
    const next = (w as unknown as { idle: { child: { pid: number } } }).idle.child.pid;
    w.close();
    await sleep(100);
    assert.ok(gone(next), 'the idle process ended with close');
  });
});
