import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TaskTracker } from '../../src/util/tasks.js';
import { captureLogger } from './fakes.js';

describe('background tasks', () => {
  it('logs a failing task by name instead of leaving an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const { log, lines } = captureLogger();
      const tasks = new TaskTracker(log);
      tasks.run('drain', async () => {
        throw new Error('boom');
      }, { container: 'abc' });
      tasks.run('sync throw', () => {
        throw new Error('at once');
      });
      await tasks.close(1000);
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(unhandled, []);
      const logged = lines.map((l) => JSON.parse(l) as { msg: string; task: string; container?: string; err: string });
      assert.ok(logged.some((l) => l.msg === 'drain failed' && l.container === 'abc' && l.err === 'boom'));
      assert.ok(logged.some((l) => l.msg === 'sync throw failed' && l.err === 'at once'));
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('waits for running work on close, up to its deadline, and refuses new work after', async () => {
    const tasks = new TaskTracker(captureLogger().log);
    let finished = false;
    tasks.run('slow', () => new Promise<void>((r) => setTimeout(() => ((finished = true), r()), 50)));
    assert.equal(await tasks.close(5000), 0);
    assert.ok(finished, 'close waited for it');
    let ran = false;
    tasks.run('late', async () => void (ran = true));
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(ran, false);
    const stuck = new TaskTracker(captureLogger().log);
    stuck.run('never', () => new Promise(() => undefined));
    assert.equal(await stuck.close(20), 1, 'a task that never ends does not hold close forever');
  });
});
