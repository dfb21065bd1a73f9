/**
 * Runs `fn` for many callers, at most one run at a time: a caller arriving during a run waits
 * for the next run (which sees its change), and every caller arriving meanwhile shares that one.
 * Twenty concurrent requests cost two runs, not twenty.
 */
export function coalesce(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  let next: Promise<void> | undefined;
  const start = (): Promise<void> => {
    running = fn().finally(() => (running = undefined));
    return running;
  };
  return () => {
    if (!running) return start();
    next ??= running.catch(() => undefined).then(() => {
      next = undefined;
      return start();
    });
    return next;
  };
}
