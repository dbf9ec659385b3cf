// installRelease of an image end to end: the controller verifies the minisign signature with the
// real minisign binary before anything runs on the host, streams the image over a real sshd onto
// a real ext4 spare (a loop device, mounted where the runbook mounts it), and the host checks the
// sha256 of what it received before the install is marked complete.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { freePort } from '../../lib/free-port.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createActivities, toFailure } from '../../activities/index.js';
import { verifiedStream, verifyImage, ReleaseChangedError } from '../../activities/release-image.js';
import { HostDigestMismatchError, receiveImage } from '../../activities/receive-image.js';
import { installRelease } from '../../activities/release.js';
import { SPARE_MNT } from '../../activities/host-io.js';
import { SshHost } from '../../activities/ssh.js';
import { FailureTypes, type HostFacts } from '../../lib/contract.js';
import type { ImageRelease, Profile } from '../../lib/profile.js';
import { blake2bOf, buildRelease, KERNEL_VERSION, makeKey, PRETTY_NAME, sha256Of, sign, type TestKey } from '../helpers/release-fixture.js';
import { startCorruptingSshd } from '../helpers/corrupting-sshd.js';
import { sshdProfile, sshdSession, type Sshd } from '../helpers/sshd.js';

const T = 120_000;
const run = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' }).trim();
const MARKER = join(SPARE_MNT, '.ab-upgrade-release');

describe.skipIf(process.getuid?.() !== 0)('installRelease of a signed image over a real sshd', () => {
  const session = sshdSession('ab-install-');
  let loop: string;
  let key: TestKey;
  let other: TestKey;
  let zst: string;
  let tar: string;
  let facts: HostFacts;
  let corrupting: Sshd;

  beforeAll(() => {
    const img = join(session.tmp, 'spare.img');
    run('truncate', '-s', '96M', img);
    loop = run('losetup', '-f', '--show', img);
    run('mkfs.ext4', '-q', '-F', '-L', 'ab-slot-b', loop);
    facts = { bootMode: 'bios', spare: { name: 'b', device: loop, partuuid: null, uuid: null, label: 'ab-slot-b', fstype: 'ext4', sizeBytes: 96 << 20, usedBytes: null } } as HostFacts;
    key = makeKey(session.tmp, 'release');
    other = makeKey(session.tmp, 'other');
    zst = buildRelease(session.tmp, 'trixie', 'tar.zst');
    tar = buildRelease(session.tmp, 'trixie-plain', 'tar');
    sign(key, zst);
    sign(key, tar);
  }, 60_000);

  beforeAll(async () => {
    // One byte of the stream changed at offset 200000, inside the payload file's data.
    corrupting = await startCorruptingSshd(session.sshd.identityFile, session.tmp, 200000);
  }, 60_000);

  afterAll(async () => {
    await corrupting?.stop();
    try {
      if (run('sh', '-c', 'findmnt -n -o SOURCE --mountpoint "$1" || true', 'sh', SPARE_MNT) === loop) run('umount', SPARE_MNT);
    } finally {
      if (loop) run('losetup', '-d', loop);
    }
  }, 60_000);

  // Each install starts from a spare without the marker, so it streams (EMPTY_SPARE empties it).
  beforeEach(() => {
    if (existsSync(MARKER)) run('rm', '-f', MARKER);
  });

  const profile = (release: Record<string, unknown>, sshd: Sshd = session.sshd): Profile => sshdProfile(sshd, { release: { source: 'image', url: zst, ...release } });
  const signedBy = (k: TestKey, over: Record<string, unknown> = {}) => profile({ signature: `${zst}.minisig`, publicKey: k.pub, ...over });

  /** The session's connection, counting every command it runs on the host. */
  function counted(): { h: SshHost; commands: () => number } {
    let n = 0;
    const h = new Proxy(session.h, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if (typeof v !== 'function') return v;
        return (...args: unknown[]) => {
          if (prop === 'script' || prop === 'exec' || prop === 'upload') n++;
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    return { h, commands: () => n };
  }

  /** A copy of the image and its signature that a test may change. */
  function copy(name: string): string {
    const f = join(session.tmp, name);
    copyFileSync(zst, f);
    copyFileSync(`${zst}.minisig`, `${f}.minisig`);
    return f;
  }

  /** installRelease refused before anything ran on the host: returns the error. */
  async function refusedBeforeTheHost(p: Profile): Promise<Error> {
    const { h, commands } = counted();
    const e = await installRelease(h, p, facts).then(() => null, (x: Error) => x);
    expect(e, 'installRelease should have failed').not.toBeNull();
    expect(commands()).toBe(0);
    return e!;
  }

  const payloadOnSpare = () => readFileSync(join(SPARE_MNT, 'usr/share/ab-payload'));
  const payloadBuilt = (name: string) => readFileSync(join(session.tmp, `${name}-tree`, 'usr/share/ab-payload'));

  it('good signature: verified, streamed, checked on the host, marked installed', { timeout: T }, async () => {
    const r = await installRelease(session.h, signedBy(key), facts);
    const sha = sha256Of(zst);
    expect(r).toMatchObject({ prettyName: PRETTY_NAME, kernel: KERNEL_VERSION, bytes: readFileSync(zst).length, via: 'ssh', image: { sha256: sha, keyId: key.keyId } });
    expect(readFileSync(MARKER, 'utf8')).toBe(`image:${sha}`);
    expect(payloadOnSpare().equals(payloadBuilt('trixie'))).toBe(true);
  });

  it('pulled by the host (release.pull): the tarball arrives over the TCP connection the host opens, no bulk SSH connection; unpacked and marked', { timeout: T }, async () => {
    const listenPort = await freePort();
    const wire = await startTcpProxy(listenPort);
    try {
      const sshBefore = session.sshd.logs().split('Accepted publickey').length;
      const r = await installRelease(session.h, signedBy(key, { pull: { listenAddress: '127.0.0.1', listenPort, connectAddress: '127.0.0.1', connectPort: wire.port } }), facts);
      const sha = sha256Of(zst);
      expect(r).toMatchObject({ bytes: readFileSync(zst).length, via: 'pull', image: { sha256: sha, keyId: key.keyId } });
      expect([wire.connections(), wire.bytes()]).toEqual([1, readFileSync(zst).length]);
      expect(session.sshd.logs().split('Accepted publickey').length).toBe(sshBefore);
      expect(readFileSync(MARKER, 'utf8')).toBe(`image:${sha}`);
      expect(payloadOnSpare().equals(payloadBuilt('trixie'))).toBe(true);
    } finally {
      await wire.stop();
    }
  });

  // The nice value of a process's nearest sshd ancestor: the sshd serving its connection.
  const SSHD_NICE = `pid=$1
while [ "$pid" -gt 1 ]; do
  case $(cat /proc/$pid/comm) in sshd|sshd-session) ps -o ni= -p "$pid" | tr -d ' '; exit ;; esac
  pid=$(sed -n 's/^PPid:[[:space:]]*//p' /proc/$pid/status)
done`;

  /**
   * Runs `install` while watching the host's processes (this machine's) every 50 ms for the
   * unpacking tar: its nice value and I/O priority as the kernel reports them, the nice value of
   * the sshd serving its connection, and how long the install took.
   */
  async function watchedInstall(install: () => Promise<unknown>) {
    const seen: Array<{ ni: string; io: string; sshd: string }> = [];
    let done = false;
    const started = Date.now();
    const watching = (async () => {
      while (!done) {
        for (const line of run('ps', '-eo', 'pid=,ni=,args=').split('\n')) {
          const m = /^\s*(\d+)\s+(-?\d+)\s+tar -xpf - .* -C (\S+)$/.exec(line);
          if (m && m[3] === SPARE_MNT) {
            seen.push({ ni: m[2]!, io: run('sh', '-c', 'ionice -p "$1" 2>/dev/null || true', 'sh', m[1]!), sshd: run('sh', '-c', `${SSHD_NICE} 2>/dev/null || true`, 'sh', m[1]!) });
          }
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    try {
      await install();
    } finally {
      done = true;
      await watching;
    }
    return { seen, seconds: (Date.now() - started) / 1000 };
  }

  it('install.nice, install.io and install.maxRate: the host unpacks at that priority, its sshd decrypts at that nice value, and the stream is held to the cap', { timeout: T }, async () => {
    const rate = 128_000;
    const p = sshdProfile(session.sshd, { release: { source: 'image', url: zst, signature: `${zst}.minisig`, publicKey: key.pub }, install: { nice: 13, io: 'idle', maxRate: '128kB/s' } });
    const bytes = readFileSync(zst).length;
    const { seen, seconds } = await watchedInstall(() => installRelease(session.h, p, facts));
    expect(payloadOnSpare().equals(payloadBuilt('trixie'))).toBe(true);
    // The paced stream lets its last piece (50 ms' worth) go without waiting for it.
    expect(seconds).toBeGreaterThanOrEqual((bytes - rate / 20) / rate);
    expect(seen.length).toBeGreaterThan(0);
    // The bulk connection's sshd, which decrypts the image, runs at the same nice value.
    expect(new Set(seen.map((s) => `${s.ni} ${s.io}, sshd ${s.sshd}`))).toEqual(new Set(['13 idle, sshd 13']));
  });

  it('pulled by the host: the default priority (nice 10, best-effort at its lowest level) and the cap hold on that path too', { timeout: T }, async () => {
    const rate = 256_000;
    const listenPort = await freePort();
    const wire = await startTcpProxy(listenPort);
    try {
      const pull = { listenAddress: '127.0.0.1', listenPort, connectAddress: '127.0.0.1', connectPort: wire.port };
      const p = sshdProfile(session.sshd, { release: { source: 'image', url: zst, signature: `${zst}.minisig`, publicKey: key.pub, pull }, install: { maxRate: 256_000 } });
      const bytes = readFileSync(zst).length;
      const { seen, seconds } = await watchedInstall(() => installRelease(session.h, p, facts));
      expect(wire.bytes()).toBe(bytes);
      expect(payloadOnSpare().equals(payloadBuilt('trixie'))).toBe(true);
      expect(seconds).toBeGreaterThanOrEqual((bytes - rate / 20) / rate);
      expect(seen.length).toBeGreaterThan(0);
      // The control connection's sshd keeps its priority: later phases run over it.
      expect(new Set(seen.map((s) => `${s.ni} ${s.io}, sshd ${s.sshd}`))).toEqual(new Set(['10 best-effort: prio 7, sshd 0']));
    } finally {
      await wire.stop();
    }
  });

  it('bad signature (its signature line altered): refused before anything runs on the host', { timeout: T }, async () => {
    const f = copy('badsig.tar.zst');
    const lines = readFileSync(`${f}.minisig`, 'utf8').split('\n');
    lines[1] = lines[1]!.slice(0, 30) + (lines[1]![30] === 'A' ? 'B' : 'A') + lines[1]!.slice(31);
    writeFileSync(`${f}.minisig`, lines.join('\n'));
    const e = await refusedBeforeTheHost(profile({ url: f, signature: `${f}.minisig`, publicKey: key.pub }));
    expect(e.message).toBe(`release image ${f} does not match its signature ${f}.minisig by key ${key.keyId}: minisign: Signature verification failed`);
  });

  it('wrong key: refused before anything runs on the host, naming both keys', { timeout: T }, async () => {
    const e = await refusedBeforeTheHost(signedBy(other));
    expect(e.message).toBe(`release.signature: ${zst}.minisig was made with key ${key.keyId}, but release.publicKey is key ${other.keyId} (wrong key, or the image was signed by someone else)`);
  });

  it('truncated artifact: refused before anything runs on the host', { timeout: T }, async () => {
    const f = copy('truncated.tar.zst');
    truncateSync(f, readFileSync(f).length - 4096);
    const e = await refusedBeforeTheHost(profile({ url: f, signature: `${f}.minisig`, publicKey: key.pub }));
    expect(e.message).toMatch(new RegExp(`^release image ${f} does not match its signature .*: minisign: Signature verification failed$`));
  });

  it('artifact tampered after signing: refused before anything runs on the host', { timeout: T }, async () => {
    const f = copy('tampered.tar.zst');
    const bytes = readFileSync(f);
    bytes[bytes.length >> 1]! ^= 0x01;
    writeFileSync(f, bytes);
    const e = await refusedBeforeTheHost(profile({ url: f, signature: `${f}.minisig`, publicKey: key.pub }));
    expect(e.message).toMatch(new RegExp(`^release image ${f} does not match its signature .*: minisign: Signature verification failed$`));
  });

  it('signature file missing: refused before anything runs on the host, naming release.signature', { timeout: T }, async () => {
    const missing = join(session.tmp, 'missing.minisig');
    const e = await refusedBeforeTheHost(signedBy(key, { signature: missing }));
    expect(e.message).toBe(`release.signature: ${missing} cannot be read (no such file)`);
  });

  it('unsigned refused: the activity fails with InvalidInput naming release.signature, before connecting', { timeout: T }, async () => {
    const unsigned = { ...profile({ sha256: sha256Of(zst), allowUnsigned: true }), release: { source: 'image', url: zst, format: 'tar.zst', sha256: sha256Of(zst) } };
    const sessionsBefore = session.sshd.logs().split('Accepted publickey').length;
    const e = await createActivities().installRelease(unsigned as unknown as Profile, facts).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(ApplicationFailure);
    expect((e as ApplicationFailure).type).toBe(FailureTypes.InvalidInput);
    expect((e as ApplicationFailure).message).toMatch(/release\.signature: required: a minisign signature of the image .* or set allowUnsigned: true/);
    expect(session.sshd.logs().split('Accepted publickey').length).toBe(sessionsBefore);
  });

  it('a signature failure reaches the workflow as a non-retryable ReleaseUnverified failure', { timeout: T }, async () => {
    const e = toFailure(await installRelease(session.h, signedBy(other), facts).then(() => null, (x: unknown) => x));
    expect(e).toBeInstanceOf(ApplicationFailure);
    expect((e as ApplicationFailure).type).toBe(FailureTypes.ReleaseUnverified);
    expect((e as ApplicationFailure).nonRetryable).toBe(true);
    expect((e as ApplicationFailure).message).toMatch(/was made with key .* but release\.publicKey is key /);
  });

  it('unsigned allowed explicitly: checked by its sha256 only, installed, no key recorded', { timeout: T }, async () => {
    const sha = sha256Of(tar);
    const r = await installRelease(session.h, profile({ url: tar, sha256: sha, allowUnsigned: true }), facts);
    expect(r).toMatchObject({ kernel: KERNEL_VERSION, image: { sha256: sha, keyId: null } });
    expect(readFileSync(MARKER, 'utf8')).toBe(`image:${sha}`);
  });

  it('host-side digest mismatch: a byte changed between controller and host fails the install, unmarked; a retry installs it', { timeout: T }, async () => {
    // This host has b2sum: it checks the image's BLAKE2b-512.
    const b2 = blake2bOf(tar);
    const p = profile({ url: tar, signature: `${tar}.minisig`, publicKey: key.pub }, corrupting);
    const h = await SshHost.connect(corrupting.target());
    try {
      const e = await installRelease(h, p, facts).then(() => null, (x: Error) => x);
      expect(e).toBeInstanceOf(HostDigestMismatchError);
      expect(e!.message).toMatch(new RegExp(`^the host received the release image with blake2b (?!${b2})[0-9a-f]{128}, but the verified image has blake2b ${b2}: it was altered between the controller and the host; nothing was marked installed`));
    } finally {
      h.close();
    }
    // tar took the changed bytes without complaint: only the digest caught them
    expect(payloadOnSpare().equals(payloadBuilt('trixie-plain'))).toBe(false);
    expect(existsSync(MARKER)).toBe(false);
    // the retry (through an unaltered link) empties the spare and installs the verified bytes
    await installRelease(session.h, profile({ url: tar, signature: `${tar}.minisig`, publicKey: key.pub }), facts);
    expect(payloadOnSpare().equals(payloadBuilt('trixie-plain'))).toBe(true);
    expect(readFileSync(MARKER, 'utf8')).toBe(`image:${sha256Of(tar)}`);
  });

  it('the image changed on the controller after verification: the stream fails, the host never completes it', { timeout: T }, async () => {
    const f = copy('swapped.tar.zst');
    const v = await verifyImage(profile({ url: f, signature: `${f}.minisig`, publicKey: key.pub }).release as ImageRelease);
    const bytes = readFileSync(f);
    bytes[bytes.length - 10]! ^= 0xff;
    writeFileSync(f, bytes);
    const root = join(session.tmp, 'swapped-root');
    mkdirSync(root);
    const e = await receiveImage(session.h, verifiedStream(v), 'tar.zst', v, root, join(session.tmp, 'swapped.lock'), { nice: 10, io: 'low' }).then(() => null, (x: Error) => x);
    expect(e).toBeInstanceOf(ReleaseChangedError);
    expect(e!.message).toMatch(new RegExp(`^release image ${f} changed after it was verified: the bytes read for the host have sha256 [0-9a-f]{64}, the verified ones ${v.sha256}`));
  });
});
