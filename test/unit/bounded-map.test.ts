// boundedMapInOrder: never more than `limit` tasks in flight, all of them used, results handed on
// in item order whatever order the tasks finish in; a failure stops new starts.
import { describe, expect, it } from 'vitest';
import { boundedMapInOrder } from '../../lib/bounded-map.js';

/** A task per item that finishes when the test says so. */
function gated<T>() {
  const gates = new Map<T, () => void>();
  let inFlight = 0;
  let maxInFlight = 0;
  const started: T[] = [];
  const fn = (item: T) =>
    new Promise<string>((resolve) => {
      started.push(item);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      gates.set(item, () => {
        inFlight--;
        resolve(`r${String(item)}`);
      });
    });
  const tick = () => new Promise((r) => setImmediate(r));
  return { fn, started, gates, tick, max: () => maxInFlight };
}

describe('boundedMapInOrder', () => {
  it('runs at most limit at once, starts in order, emits in item order as soon as possible', async () => {
    const g = gated<number>();
    const emitted: string[] = [];
    const all = boundedMapInOrder([0, 1, 2, 3, 4], 2, g.fn, (r, i) => emitted.push(`${i}:${r}`));
    await g.tick();
    expect(g.started).toEqual([0, 1]);
    g.gates.get(1)!(); // the second finishes first: held back until the first is done
    await g.tick();
    expect(g.started).toEqual([0, 1, 2]);
    expect(emitted).toEqual([]);
    g.gates.get(0)!();
    await g.tick();
    expect(emitted).toEqual(['0:r0', '1:r1']);
    expect(g.started).toEqual([0, 1, 2, 3]);
    for (const i of [3, 2, 4]) {
      g.gates.get(i)!();
      await g.tick();
    }
    expect(await all).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
    expect(emitted).toEqual(['0:r0', '1:r1', '2:r2', '3:r3', '4:r4']);
    expect(g.max()).toBe(2);
  });

  it('uses the whole bound, and never more tasks than items', async () => {
    const g = gated<number>();
    const all = boundedMapInOrder([0, 1, 2], 50, g.fn);
    await g.tick();
    expect(g.started).toEqual([0, 1, 2]);
    for (const i of [2, 0, 1]) g.gates.get(i)!();
    expect(await all).toEqual(['r0', 'r1', 'r2']);
    expect(await boundedMapInOrder([], 3, g.fn)).toEqual([]);
  });

  it('a failure starts nothing more and rejects with that error', async () => {
    const started: number[] = [];
    const run = boundedMapInOrder([0, 1, 2, 3], 1, async (i) => {
      started.push(i);
      if (i === 1) throw new Error('host 1 broke');
      return i;
    });
    await expect(run).rejects.toThrow('host 1 broke');
    expect(started).toEqual([0, 1]);
  });

  it('refuses a limit that is not a whole number ≥ 1', async () => {
    await expect(boundedMapInOrder([1], 0, async (x) => x)).rejects.toThrow('limit must be a whole number ≥ 1, not 0');
    await expect(boundedMapInOrder([1], 1.5, async (x) => x)).rejects.toThrow(RangeError);
  });
});
