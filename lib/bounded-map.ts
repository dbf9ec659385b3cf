// Runs one task per item with at most `limit` in flight (like Ansible's forks), and hands each
// result on in the items' order as soon as it and every earlier one are done: a fleet's output
// reads the same whatever order the hosts answer in.

/**
 * `fn` for every item, at most `limit` at once, started in order. `onResult` is called in item
 * order. Resolves to the results in item order. If an `fn` (or `onResult`) throws, no further
 * item starts and no further result is handed on; the call rejects with that error once the ones
 * in flight have settled.
 */
export async function boundedMapInOrder<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
  onResult: (result: R, index: number) => void = () => {},
): Promise<R[]> {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be a whole number ≥ 1, not ${limit}`);
  const results: R[] = new Array(items.length);
  const done: boolean[] = new Array(items.length).fill(false);
  let next = 0;
  let emitted = 0;
  let failure: { error: unknown } | undefined;

  const emitReady = () => {
    while (!failure && emitted < items.length && done[emitted]) {
      onResult(results[emitted]!, emitted);
      emitted++;
    }
  };

  const worker = async () => {
    while (!failure && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!, i);
        done[i] = true;
        emitReady();
      } catch (error) {
        failure ??= { error };
      }
    }
  };

  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
  return results;
}
