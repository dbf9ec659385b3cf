// An activity that works over SSH heartbeats while its command runs (activities/host-io.ts onHost),
// so its options' heartbeat timeout (workflows/activity-options.ts, 30 s) ends a dead worker's
// attempt without cutting a long, silent but healthy command short.
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { onHost, sh } from '../../activities/host-io.js';
import { closeAllHosts } from '../../activities/ssh.js';
import { sshdProfile, startSshd, type Sshd } from '../helpers/sshd.js';

let sshd: Sshd;
beforeAll(async () => {
  sshd = await startSshd();
}, 60_000);
afterAll(async () => {
  closeAllHosts();
  await sshd?.stop();
}, 60_000);

it('heartbeats every 5 s while a silent command runs on the host', { timeout: 60_000 }, async () => {
  const env = new MockActivityEnvironment();
  const beats: number[] = [];
  env.on('heartbeat', () => beats.push(Date.now()));
  const started = Date.now();
  const out = await env.run(() => onHost(sshdProfile(sshd), (h) => sh(h, 'sleep 6; echo done')));
  const ended = Date.now();
  expect(out).toBe('done\n');
  // One as the work starts, one 5 s into the 6 s of silence (keepAlive stopping is unit-tested).
  expect(beats.length).toBeGreaterThanOrEqual(2);
  expect(beats.every((t) => t >= started && t <= ended)).toBe(true);
});
