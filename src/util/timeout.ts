/** Resolves to the promise's value, or to `undefined` once `ms` have passed; aborts `ctl` then. */
export async function within<T>(ms: number, p: Promise<T>, ctl?: AbortController): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((r) => {
    timer = setTimeout(() => {
      ctl?.abort();
      r(undefined);
    }, ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
