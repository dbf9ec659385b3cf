// keepAlive (activities/progress.ts): an activity working over SSH heartbeats while it runs, so
// the heartbeat timeout of its options (workflows/activity-options.ts) ends a dead worker's
// attempt; it never overwrites the progress the activity reports itself.
import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect, test } from 'vitest';
import { heartbeat, keepAlive } from '../../activities/progress.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `fn` as an activity; returns its result and the details of every heartbeat it sent. */
async function inActivity<T>(fn: () => Promise<T>, heartbeatDetails?: unknown): Promise<{ result: T; beats: unknown[] }> {
  const env = new MockActivityEnvironment(heartbeatDetails === undefined ? {} : { heartbeatDetails });
  const beats: unknown[] = [];
  env.on('heartbeat', (d: unknown) => beats.push(d));
  const result = (await env.run(fn)) as T;
  return { result, beats };
}

describe('keepAlive', () => {
  test('heartbeats while silent work runs, and stops when it ends', async () => {
    const env = new MockActivityEnvironment();
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    const result = await env.run(() => keepAlive(() => sleep(260).then(() => 'done'), 50));
    expect(result).toBe('done');
    // One at the start, then one per 50 ms of silence.
    expect(beats.length).toBeGreaterThanOrEqual(3);
    expect(beats.every((d) => d === undefined)).toBe(true);
    const count = beats.length;
    await sleep(200);
    expect(beats.length).toBe(count);
  });

  test("repeats the activity's own last details, never replaces them", async () => {
    const { beats } = await inActivity(() =>
      keepAlive(async () => {
        heartbeat({ phase: 'copy', files: 3 });
        await sleep(200);
      }, 50),
    );
    const i = beats.findIndex((d) => JSON.stringify(d) === '{"phase":"copy","files":3}');
    expect(i).toBeGreaterThanOrEqual(0);
    expect(beats.length).toBeGreaterThan(i + 1);
    expect(beats.slice(i)).toEqual(beats.slice(i).map(() => ({ phase: 'copy', files: 3 })));
  });

  test("a retry keeps the earlier attempt's details until it reports its own", async () => {
    const { beats } = await inActivity(() => keepAlive(() => sleep(120), 50), { resumeAt: 42 });
    expect(beats.length).toBeGreaterThanOrEqual(2);
    expect(beats).toEqual(beats.map(() => ({ resumeAt: 42 })));
  });

  test('outside an activity it just runs the work', async () => {
    expect(await keepAlive(async () => 7, 10)).toBe(7);
  });
});
