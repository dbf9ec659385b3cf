// awaitComeback against a real sshd behind a "booting host" gate: until the gate opens, it
// accepts TCP connections and never answers (what QEMU's port forward, or a NAT in front of
// a booting host, does before sshd is up). Probes must not queue behind those hung connections.
import { execFileSync } from 'node:child_process';
import { getEventListeners } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awaitComeback, pollComeback, probeOnce } from '../../activities/health.js';
import { createActivities } from '../../activities/index.js';
import { FailureTypes } from '../../lib/contract.js';
import { closeAllHosts, SshHost } from '../../activities/ssh.js';
import { freePort } from '../../lib/free-port.js';
import { sshdProfile, startSshd, type Sshd } from '../helpers/sshd.js';

const T = 60_000;

interface Gate {
  port: number;
  open(): void;
  /** Connections held silent, and how many of them were still held when one got through. */
  held: Socket[];
  heldWhenPassed: number | null;
  close(): Promise<void>;
}

function startGate(targetPort: number): Promise<Gate> {
  let open = false;
  const gate: Gate = {
    port: 0,
    open: () => (open = true),
    held: [],
    heldWhenPassed: null,
    close: () => new Promise((r) => (gate.held.forEach((s) => s.destroy()), server.close(() => r()))),
  };
  const server: Server = createServer((client) => {
    client.on('error', () => {});
    // Read and drop what the client sends (its SSH banner), so its FIN is seen and the socket closes.
    if (!open) return void (client.resume(), gate.held.push(client));
    gate.heldWhenPassed ??= gate.held.filter((s) => !s.destroyed && !s.closed).length;
    const upstream = connect(targetPort, '127.0.0.1');
    upstream.on('error', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      gate.port = (server.address() as { port: number }).port;
      resolve(gate);
    }),
  );
}

/** A host whose sshd answers, but slowly (one still busy booting): each chunk it sends arrives `delayMs` late. */
function startSlowLink(targetPort: number, delayMs: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) (sockets.add(s), s.on('error', () => {}), s.on('close', () => (client.destroy(), upstream.destroy())));
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => void setTimeout(() => client.destroyed || client.write(chunk), delayMs));
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as { port: number }).port,
        close: () => new Promise((r) => (sockets.forEach((s) => s.destroy()), server.close(() => r()))),
      }),
    ),
  );
}

let sshd: Sshd;
beforeAll(async () => {
  sshd = await startSshd();
}, T);
afterAll(async () => {
  closeAllHosts();
  await sshd?.stop();
}, T);

describe('awaitComeback', () => {
  it('answers as soon as sshd does, with probes overlapping the hung ones', { timeout: T }, async () => {
    const gate = await startGate(sshd.port);
    try {
      // This machine's root is on neither slot: the comeback reports that, naming the boot that answered.
      const profile = sshdProfile(sshd, { port: gate.port });
      // Open the gate once two probes hang in it (bounded: 10 s).
      const opened = new Promise<void>((resolve) => {
        const started = Date.now();
        const tick = setInterval(() => {
          if (gate.held.length >= 2 || Date.now() - started > 10_000) (clearInterval(tick), gate.open(), resolve());
        }, 50);
      });
      const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
      const result = awaitComeback(profile, 'boot-before-the-reboot', 300);
      await opened;
      await expect(result).rejects.toThrow(`the host came back (boot ${bootId}) but its root is on neither slot`);
      expect(gate.held.length).toBeGreaterThanOrEqual(2);
      // A probe got through while earlier ones were still hung (each is bounded by 5 s).
      expect(gate.heldWhenPassed).toBeGreaterThanOrEqual(1);
    } finally {
      await gate.close();
    }
  });

  it('a slow sshd that greets in time gets the time its handshake needs (no endless restarts)', { timeout: T }, async () => {
    // Greeting after 1.5 s (within the 5 s greeting bound); the whole probe, a dozen delayed
    // round trips, takes far longer than that bound.
    const link = await startSlowLink(sshd.port, 1_500);
    try {
      const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
      const started = Date.now();
      const stop = new AbortController();
      const cap = setTimeout(() => stop.abort(new Error('no answer within 45 s')), 45_000);
      const outcome = await pollComeback(sshdProfile(sshd, { port: link.port }), 'boot-before-the-reboot', 300, stop.signal).then(
        () => 'resolved',
        (e: Error) => e.message,
      );
      clearTimeout(cap);
      // This machine's root is on neither slot: reaching that verdict means a probe got through.
      expect(outcome).toMatch(`the host came back (boot ${bootId}) but its root is on neither slot`);
      expect(Date.now() - started).toBeGreaterThan(5_000);
    } finally {
      await link.close();
    }
  });

  it('ignores the old boot and keeps polling until a new one answers', { timeout: T }, async () => {
    const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const profile = sshdProfile(sshd);
    // This machine never reboots, so the "old" boot keeps answering: still polling after 3 s.
    const stop = new AbortController();
    const poll = pollComeback(profile, bootId, 200, stop.signal).then(() => 'returned', (e: Error) => `rejected: ${e.message}`);
    const outcome = await Promise.race([poll, new Promise((r) => setTimeout(() => r('still polling'), 3_000))]);
    expect(outcome).toBe('still polling');
    stop.abort(new Error('test over'));
    expect(await poll).toBe('rejected: test over');
  });

  it('an aborted probe drops its connection at once', { timeout: T }, async () => {
    const gate = await startGate(sshd.port);
    try {
      const stop = new AbortController();
      const probe = probeOnce(sshdProfile(sshd, { port: gate.port }), 50_000, stop.signal);
      for (let i = 0; i < 100 && gate.held.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      const held = gate.held[0]!;
      const dropped = new Promise((r) => held.once('close', r));
      stop.abort();
      expect(await probe).toMatchObject({ reachable: false, detail: expect.stringMatching(/aborted/) });
      await dropped; // the 50 s probe bound would fail the test's 60 s timeout otherwise
    } finally {
      await gate.close();
    }
  });

  it('connections sharing one abort signal leave no listener on it', { timeout: T }, async () => {
    const shared = new AbortController();
    for (let i = 0; i < 3; i++) (await SshHost.connect(sshd.target(), { signal: shared.signal })).close();
    await expect(SshHost.connect(sshd.target({ port: await freePort() }), { signal: shared.signal })).rejects.toThrow();
    expect(getEventListeners(shared.signal, 'abort')).toHaveLength(0);
  });
});

describe('a host that comes back with another SSH host key than the pinned one', () => {
  /** The activity's rejection, as the worker would report it to the server. */
  const failureOf = async (p: Promise<unknown>): Promise<ApplicationFailure> => {
    const e = await p.then(
      () => new Error('expected the activity to fail'),
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(ApplicationFailure);
    return e as ApplicationFailure;
  };

  it('the comeback poll and the probe fail at once, non-retryably, naming the key it presented', { timeout: T }, async () => {
    // Pinned: a key this sshd does not have, as a key line (only its type is offered) and as a
    // fingerprint (every type is offered).
    const dir = mkdtempSync(join(tmpdir(), 'ab-hostkey-'));
    try {
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'other')]);
      const otherLine = readFileSync(join(dir, 'other.pub'), 'utf8').trim();
      const acts = createActivities();
      for (const hostKey of [otherLine, `SHA256:${'A'.repeat(43)}`]) {
        const profile = sshdProfile(sshd, { hostKey });
        const started = Date.now();
        const poll = await failureOf(acts.awaitComeback(profile, 'boot-before-the-reboot', 200));
        expect(poll.type).toBe(FailureTypes.HostKeyMismatch);
        expect(poll.nonRetryable).toBe(true);
        expect(poll.message).toContain(`the server presented ${sshd.hostKeyFingerprint}`);
        expect(poll.message).toMatch(/^Host key verification failed for 127\.0\.0\.1:\d+: .*Refusing to connect/);
        // Ended by the first answer, not by polling on (a poll that did not stop would run until cancelled).
        expect(Date.now() - started).toBeLessThan(T / 2);

        const probe = await failureOf(acts.probeHost(profile));
        expect(probe.type).toBe(FailureTypes.HostKeyMismatch);
        expect(probe.nonRetryable).toBe(true);
        expect(probe.message).toContain(sshd.hostKeyFingerprint);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
