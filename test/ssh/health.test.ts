// checkHealth against a real sshd behind a door that can drop connections: a new boot's sshd
// that is not up yet, or restarts once, fails a round, and the checks go on until healthTimeout.
// systemctl is a stand-in (this machine has no systemd to ask); everything else is real.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkHealth } from '../../activities/health.js';
import { closeAllHosts } from '../../activities/ssh.js';
import { sshdProfile, startSshd, type Sshd } from '../helpers/sshd.js';

const T = 60_000;

interface Door {
  port: number;
  /** While shut, each connection is accepted and closed at once (before sshd's greeting). */
  shut: boolean;
  dropped: number;
  /** Closes every connection passed through so far. */
  cutAll(): void;
  close(): Promise<void>;
}

function startDoor(targetPort: number): Promise<Door> {
  const passed = new Set<Socket>();
  const door: Door = {
    port: 0,
    shut: true,
    dropped: 0,
    cutAll: () => passed.forEach((s) => s.destroy()),
    close: () => new Promise((r) => (door.cutAll(), server.close(() => r()))),
  };
  const server: Server = createServer((client) => {
    client.on('error', () => {});
    if (door.shut) return void (door.dropped++, client.destroy());
    const upstream = connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) (passed.add(s), s.on('error', () => {}), s.on('close', () => (client.destroy(), upstream.destroy())));
    client.pipe(upstream).pipe(client);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      door.port = (server.address() as { port: number }).port;
      resolve(door);
    }),
  );
}

/** Polls `cond` every 50 ms for at most `ms`. */
async function until(cond: () => boolean, ms: number): Promise<void> {
  for (const end = Date.now() + ms; !cond() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 50));
}

let sshd: Sshd;
let dir: string;
let door: Door;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ab-health-'));
  const shims = join(dir, 'shims');
  mkdirSync(shims);
  writeFileSync(join(shims, 'systemctl'), '#!/bin/sh\ncase "$*" in *is-system-running*) echo running ;; *is-active*) echo active ;; esac\n');
  chmodSync(join(shims, 'systemctl'), 0o755);
  sshd = await startSshd({ extraConfig: [`SetEnv PATH=${shims}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`] });
}, T);

afterAll(async () => {
  closeAllHosts();
  await door?.close();
  await sshd?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, T);

describe('checkHealth on a host whose sshd is not there yet, or drops out', () => {
  it('connections dropped before the handshake fail rounds, not the check: it passes once sshd answers', { timeout: T }, async () => {
    door = await startDoor(sshd.port);
    const profile = sshdProfile(sshd, { port: door.port, health: { units: ['ssh.service'] }, timings: { healthTimeout: '40s' } });
    const report = checkHealth(profile);
    await until(() => door.dropped >= 2, 20_000);
    expect(door.dropped).toBeGreaterThanOrEqual(2);
    door.shut = false;
    const r = await report;
    expect(r.checks.map((c) => `${c.name} ${c.ok}`)).toEqual(['system booted true', 'unit ssh.service true']);
    expect(r.ok).toBe(true);
    await door.close();
  });

  it('a host never reachable within healthTimeout is reported unhealthy, naming the connection failure', { timeout: T }, async () => {
    door = await startDoor(sshd.port);
    const started = Date.now();
    const r = await checkHealth(sshdProfile(sshd, { port: door.port, timings: { healthTimeout: '5s' } }));
    expect(Date.now() - started).toBeGreaterThanOrEqual(5_000);
    expect(door.dropped).toBeGreaterThanOrEqual(2);
    expect(r.ok).toBe(false);
    expect(r.checks).toEqual([{ name: 'ssh', ok: false, detail: expect.stringMatching(new RegExp(`127\\.0\\.0\\.1:${door.port}`)) }]);
    await door.close();
  });

  it('a connection lost in the middle of a round: the next round reconnects and passes', { timeout: T }, async () => {
    door = await startDoor(sshd.port);
    door.shut = false;
    // The first run of this check waits to be cut off; later runs pass at once.
    const started = join(dir, 'cut-me');
    const run = `[ -e ${started}.done ] && exit 0; touch ${started}.done ${started}; sleep 20`;
    const profile = sshdProfile(sshd, { port: door.port, health: { commands: [{ name: 'cut', run, timeout: '30s' }] }, timings: { healthTimeout: '40s' } });
    const report = checkHealth(profile);
    await until(() => existsSync(started), 20_000);
    expect(existsSync(started)).toBe(true);
    door.cutAll();
    const r = await report;
    expect(r.checks.map((c) => `${c.name} ${c.ok}`)).toEqual(['system booted true', 'cut true']);
    await door.close();
  });

  it('refused credentials end the check at once: waiting would not change them', { timeout: T }, async () => {
    const key = join(dir, 'stranger');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    const started = Date.now();
    await expect(checkHealth(sshdProfile(sshd, { auth: { identityFile: key }, timings: { healthTimeout: '40s' } }))).rejects.toMatchObject({
      name: 'SshConnectError',
      message: expect.stringMatching(/^Authentication failed/),
    });
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});
