// checkHealth against a real sshd behind a door that can drop connections: a new boot's sshd
// that is not up yet, or restarts once, fails a round, and the checks go on until healthTimeout.
// systemctl is a stand-in (this machine has no systemd to ask); everything else is real.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { checkHealth } from '../../activities/health.js';
import { createActivities } from '../../activities/index.js';
import { FailureTypes } from '../../lib/contract.js';
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

const thisBoot = () => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();

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
  // The boot id is this machine's, until a test writes another one (a reboot it cannot do).
  const bootIdFile = join(dir, 'boot_id');
  writeFileSync(join(shims, 'cat'), `#!/bin/sh\n[ "$*" = /proc/sys/kernel/random/boot_id ] && [ -e ${bootIdFile} ] && exec /bin/cat ${bootIdFile}\nexec /bin/cat "$@"\n`);
  for (const f of ['systemctl', 'cat']) chmodSync(join(shims, f), 0o755);
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
    const report = checkHealth(profile, thisBoot());
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

describe('checkHealth speaks for one boot', () => {
  it('a boot other than the one that came back answers: it fails at once, not retried', { timeout: T }, async () => {
    const profile = sshdProfile(sshd, { timings: { healthTimeout: '40s' } });
    await expect(checkHealth(profile, 'the-boot-that-came-back')).rejects.toMatchObject({
      name: 'HostRebootedError',
      message: `the host booted again during its health checks: boot the-boot-that-came-back was checked, boot ${thisBoot()} answers now`,
    });
    const failure = await createActivities().checkHealth(profile, 'the-boot-that-came-back').catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type: FailureTypes.HostRebooted, nonRetryable: true });
  });

  it("without a boot to hold to, the first round's boot is held: a reboot between rounds fails the check", { timeout: T }, async () => {
    // The first round fails (so a second one runs), after marking that it ran.
    const ran = join(dir, 'round-ran');
    const profile = sshdProfile(sshd, { health: { commands: [{ name: 'later', run: `touch ${ran}; false`, timeout: '10s' }] }, timings: { healthTimeout: '40s' } });
    const report = checkHealth(profile).catch((e: Error) => e);
    await until(() => existsSync(ran), 20_000);
    writeFileSync(join(dir, 'boot_id'), 'a-new-boot\n');
    const e = await report;
    rmSync(join(dir, 'boot_id'));
    expect(e).toMatchObject({ name: 'HostRebootedError', message: `the host booted again during its health checks: boot ${thisBoot()} was checked, boot a-new-boot answers now` });
  });
});
