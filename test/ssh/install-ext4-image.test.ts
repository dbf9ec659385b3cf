// The ext4-image release end to end on this machine: the real `release build` (mke2fs -d,
// resize2fs -M, zstd frames, manifest, minisign) makes an image of a tiny rootfs, and the real
// installRelease writes it over a real sshd onto a loop device bigger than the image: grown to
// the device, the spare's UUID and label, files identical; a tampered stream, a slot too small,
// a bad manifest signature and another build's manifest are refused before anything is marked.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, linkSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { PullConnectError } from '../../activities/release-pull.js';
import { freePort } from '../../lib/free-port.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SlotTooSmallError } from '../../activities/image-manifest.js';
import { checkRelease } from '../../activities/release-image.js';
import { SPARE_MNT } from '../../activities/host-io.js';
import { ReleaseSignatureError } from '../../activities/signature.js';
import { HostDigestMismatchError } from '../../activities/receive-image.js';
import { installRelease } from '../../activities/release.js';
import { SshHost } from '../../activities/ssh.js';
import { buildReleaseImage, type BuiltRelease } from '../../client/release-build.js';
import type { HostFacts, SlotFacts } from '../../lib/contract.js';
import type { Profile } from '../../lib/profile.js';
import { ManifestError } from '../../lib/release-manifest.js';
import { blake2bOf, KERNEL_VERSION, makeKey, PRETTY_NAME, sign, type TestKey } from '../helpers/release-fixture.js';
import { startCorruptingSshd } from '../helpers/corrupting-sshd.js';
import { sshdProfile, sshdSession, type Sshd } from '../helpers/sshd.js';

// Generous: a few seconds each on a quiet machine, but this one is shared.
const T = 240_000;
const run = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' }).trim();
const sh = (script: string, ...args: string[]) => run('sh', '-c', script, 'sh', ...args);
const blkid = (dev: string, tag: string) => sh('blkid -p -s "$1" -o value "$2" || true', tag, dev);
const MARKER = join(SPARE_MNT, '.ab-upgrade-release');
const SLOT_BYTES = 128 << 20;
const mounted = () => sh('findmnt -n -o SOURCE --mountpoint "$1" || true', SPARE_MNT);
/** Every entry of a tree: path, type, mode, owner, size, link target, and a digest of each file's content. */
const listing = (dir: string) =>
  sh(
    `cd "$1" && { find . -path ./lost+found -prune -o -path ./.ab-upgrade-release -prune -o -type d -printf '%P %y %m %U:%G\\n'
  find . -path ./lost+found -prune -o -path ./.ab-upgrade-release -prune -o ! -type d -printf '%P %y %m %U:%G %s %l %n\\n'; } | sort
find . -path ./lost+found -prune -o -type f ! -name .ab-upgrade-release -print0 | sort -z | xargs -0 sha256sum`,
    dir,
  );

describe.skipIf(process.getuid?.() !== 0)('installRelease of an ext4 image built by `release build`, over a real sshd', () => {
  const session = sshdSession('ab-ext4-');
  let key: TestKey;
  let other: TestKey;
  let built: BuiltRelease;
  let rootfs: string;
  let loop: string;
  let small: string;
  let corrupting: Sshd;
  const spare = (over: Partial<SlotFacts> = {}): HostFacts =>
    ({ bootMode: 'bios', spare: { name: 'b', device: loop, partuuid: null, uuid: slotUuid, label: 'ab-slot-b', fstype: 'ext4', sizeBytes: SLOT_BYTES, usedBytes: null, ...over } }) as HostFacts;
  let slotUuid: string;

  beforeAll(async () => {
    // A tiny rootfs with what a slot needs and what mke2fs -d must keep: owners, modes, a
    // symlink out of the tree's own root, a hard link, an empty directory.
    rootfs = join(session.tmp, 'rootfs');
    for (const d of ['boot', 'etc', 'usr/lib', 'usr/share', 'var/empty', 'home/op']) mkdirSync(join(rootfs, d), { recursive: true });
    writeFileSync(join(rootfs, `boot/vmlinuz-${KERNEL_VERSION}`), 'kernel\n');
    writeFileSync(join(rootfs, `boot/initrd.img-${KERNEL_VERSION}`), 'initrd\n');
    writeFileSync(join(rootfs, 'usr/lib/os-release'), `PRETTY_NAME="${PRETTY_NAME}"\nID=debian\nVERSION_ID="13"\n`);
    symlinkSync('../usr/lib/os-release', join(rootfs, 'etc/os-release'));
    writeFileSync(join(rootfs, 'usr/share/ab-payload'), randomBytes(2 << 20));
    linkSync(join(rootfs, 'usr/share/ab-payload'), join(rootfs, 'usr/share/ab-payload-link'));
    writeFileSync(join(rootfs, 'home/op/secret'), 'op\n');
    chmodSync(join(rootfs, 'home/op/secret'), 0o600);
    run('chown', '-R', '1234:5678', join(rootfs, 'home/op'));
    key = makeKey(session.tmp, 'release');
    other = makeKey(session.tmp, 'other');
    built = await buildReleaseImage({ rootfs, out: join(session.tmp, 'out'), signKey: key.sec, level: 3 });

    const img = join(session.tmp, 'spare.img');
    run('truncate', '-s', String(SLOT_BYTES), img);
    loop = run('losetup', '-f', '--show', img);
    // What prepareSpare leaves: a fresh ext4 with the slot's label.
    run('mkfs.ext4', '-q', '-F', '-L', 'ab-slot-b', loop);
    slotUuid = blkid(loop, 'UUID');
    const smallImg = join(session.tmp, 'small.img');
    run('truncate', '-s', '8M', smallImg);
    small = run('losetup', '-f', '--show', smallImg);
    run('mkfs.ext4', '-q', '-F', '-L', 'ab-slot-b', small);

    // A fault between controller and host: the receiving script's stdin gets one byte changed.
    corrupting = await startCorruptingSshd(session.sshd.identityFile, session.tmp, 100000);
  }, 90_000);

  afterAll(async () => {
    await corrupting?.stop();
    try {
      if ([loop, small].includes(mounted())) run('umount', SPARE_MNT);
    } finally {
      for (const d of [loop, small]) if (d) run('losetup', '-d', d);
    }
  }, 60_000);

  // Each install starts from a spare that is not mounted and holds no release.
  beforeEach(() => {
    if (mounted()) run('umount', SPARE_MNT);
    run('wipefs', '-q', '-a', loop);
    run('mkfs.ext4', '-q', '-F', '-L', 'ab-slot-b', '-U', slotUuid, loop);
  });

  const profile = (over: Record<string, unknown> = {}, sshd: Sshd = session.sshd): Profile =>
    sshdProfile(sshd, { release: { source: 'image', format: 'ext4-image', url: built.image, signature: `${built.image}.minisig`, publicKey: key.pub, ...over } });

  /** installRelease refused before any command ran on the host: returns the error. */
  async function refusedBeforeTheHost(p: Profile, facts: HostFacts = spare()): Promise<Error> {
    let n = 0;
    const h = new Proxy(session.h, {
      get: (t, prop, r) => {
        const v = Reflect.get(t, prop, r);
        if (typeof v !== 'function') return v;
        return (...a: unknown[]) => (['script', 'exec', 'upload'].includes(prop as string) && n++, (v as (...x: unknown[]) => unknown).apply(t, a));
      },
    });
    const e = await installRelease(h, p, facts).then(() => null, (x: Error) => x);
    expect(e, 'installRelease should have failed').not.toBeNull();
    expect(n).toBe(0);
    return e!;
  }

  it('writes the image, grows it to the slot, gives it the spare\'s UUID and label, files identical; a retry streams nothing', { timeout: T }, async () => {
    const r = await installRelease(session.h, profile(), spare());
    expect(r).toMatchObject({ prettyName: PRETTY_NAME, kernel: KERNEL_VERSION, bytes: built.manifest.compressedBytes, via: 'ssh', image: { sha256: built.manifest.sha256, keyId: key.keyId } });
    expect(mounted()).toBe(loop);
    expect(readFileSync(MARKER, 'utf8')).toBe(`image:${built.manifest.sha256}`);
    expect([blkid(loop, 'UUID'), blkid(loop, 'LABEL'), blkid(loop, 'TYPE')]).toEqual([slotUuid, 'ab-slot-b', 'ext4']);
    const fsBytes = Number(sh('df -B1 --output=size "$1" | tail -1', SPARE_MNT));
    const blocks = sh('dumpe2fs -h "$1" 2>/dev/null | sed -n "s/^Block count: *//p; s/^Block size: *//p"', loop).split('\n').map(Number);
    expect(blocks[0]! * blocks[1]!).toBe(SLOT_BYTES);
    expect(fsBytes).toBeGreaterThan(built.manifest.imageBytes);
    expect(listing(SPARE_MNT)).toBe(listing(rootfs));
    expect(sh('stat -c "%u:%g %a" "$1/home/op/secret"', SPARE_MNT)).toBe('1234:5678 600');

    const again = await installRelease(session.h, profile(), spare());
    expect(again.bytes).toBeNull();
    expect(again.via).toBeUndefined();
    expect(mounted()).toBe(loop);
  });

  it('a spare without a UUID at inspect ends with the UUID prepareSpare gave it', { timeout: T }, async () => {
    await installRelease(session.h, profile(), spare({ uuid: null }));
    expect(blkid(loop, 'UUID')).toBe(slotUuid);
  });

  it('a spare without a UUID at inspect that holds an earlier attempt\'s image after a reboot: a new UUID, not the build\'s', { timeout: T }, async () => {
    sh('zstd -q -dc "$1" | dd of="$2" bs=4M conv=fsync status=none; rm -f /run/ab-upgrade/image-uuid', built.image, loop);
    const buildUuid = blkid(loop, 'UUID');
    expect(blkid(loop, 'LABEL')).toBe('ab-release');
    await installRelease(session.h, profile(), spare({ uuid: null }));
    expect(blkid(loop, 'UUID')).toMatch(/^[0-9a-f-]{36}$/);
    expect(blkid(loop, 'UUID')).not.toBe(buildUuid);
    expect(blkid(loop, 'LABEL')).toBe('ab-slot-b');
  });

  it('a byte changed between controller and host: refused by the host\'s digest (BLAKE2b-512: this host has b2sum), nothing marked; a retry installs it', { timeout: T }, async () => {
    const h = await SshHost.connect(corrupting.target());
    try {
      const e = await installRelease(h, profile({}, corrupting), spare()).then(() => null, (x: Error) => x);
      expect(e).toBeInstanceOf(HostDigestMismatchError);
      expect(e!.message).toMatch(new RegExp(`but the verified image has blake2b ${blake2bOf(built.image)}: it was altered between the controller and the host; nothing was marked installed`));
    } finally {
      h.close();
    }
    expect(mounted()).toBe('');
    // Whatever lies on the device is not marked as this release.
    const marked = sh('mkdir -p "$2"; if mount -o ro,noload "$1" "$2" 2>/dev/null; then cat "$2/.ab-upgrade-release" 2>/dev/null || true; umount "$2"; fi', loop, join(session.tmp, 'peek'));
    expect(marked).toBe('');
    await installRelease(session.h, profile(), spare());
    expect(readFileSync(MARKER, 'utf8')).toBe(`image:${built.manifest.sha256}`);
    expect(listing(SPARE_MNT)).toBe(listing(rootfs));
  });

  describe('pulled by the host (release.pull)', () => {
    let listenPort: number;
    beforeAll(async () => {
      listenPort = await freePort();
    });
    const pulled = (connectPort: number) => profile({ pull: { listenAddress: '127.0.0.1', listenPort, connectAddress: '127.0.0.1', connectPort } });
    const markedOnDevice = () => sh('mkdir -p "$2"; if mount -o ro,noload "$1" "$2" 2>/dev/null; then cat "$2/.ab-upgrade-release" 2>/dev/null || true; umount "$2"; fi', loop, join(session.tmp, 'peek'));

    it('the image crosses the TCP connection the host opens, no bulk SSH connection: written, grown, files identical', { timeout: T }, async () => {
      const wire = await startTcpProxy(listenPort);
      try {
        const sshBefore = session.sshd.logs().split('Accepted publickey').length;
        const r = await installRelease(session.h, pulled(wire.port), spare());
        expect(r).toMatchObject({ bytes: built.manifest.compressedBytes, via: 'pull', image: { sha256: built.manifest.sha256, keyId: key.keyId } });
        expect([wire.connections(), wire.bytes()]).toEqual([1, built.manifest.compressedBytes]);
        expect(session.sshd.logs().split('Accepted publickey').length).toBe(sshBefore);
        expect(readFileSync(MARKER, 'utf8')).toBe(`image:${built.manifest.sha256}`);
        expect([blkid(loop, 'UUID'), blkid(loop, 'LABEL')]).toEqual([slotUuid, 'ab-slot-b']);
        expect(listing(SPARE_MNT)).toBe(listing(rootfs));
      } finally {
        await wire.stop();
      }
    });

    it('a byte changed on the wire: refused by the host\'s digest (BLAKE2b-512: this host has b2sum), nothing marked; a retry installs it', { timeout: T }, async () => {
      const bad = await startTcpProxy(listenPort, { flipAt: 100000 });
      try {
        const e = await installRelease(session.h, pulled(bad.port), spare()).then(() => null, (x: Error) => x);
        expect(e).toBeInstanceOf(HostDigestMismatchError);
        expect(e!.message).toMatch(new RegExp(`but the verified image has blake2b ${blake2bOf(built.image)}: it was altered between the controller and the host; nothing was marked installed`));
        expect(bad.bytes()).toBe(built.manifest.compressedBytes);
      } finally {
        await bad.stop();
      }
      expect(mounted()).toBe('');
      expect(markedOnDevice()).toBe('');
      const wire = await startTcpProxy(listenPort);
      try {
        await installRelease(session.h, pulled(wire.port), spare());
      } finally {
        await wire.stop();
      }
      expect(listing(SPARE_MNT)).toBe(listing(rootfs));
    });

    it('the host cannot reach the controller: a clear error naming the address and fields, the spare untouched, the port free again', { timeout: T }, async () => {
      const closedPort = await freePort();
      const e = await installRelease(session.h, pulled(closedPort), spare()).then(() => null, (x: Error) => x);
      expect(e).toBeInstanceOf(PullConnectError);
      expect(e!.message).toMatch(new RegExp(`^release\\.pull: the host could not connect to the controller at 127\\.0\\.0\\.1 port ${closedPort} \\(connectAddress and connectPort: .*\\); nothing was written: connect: Connection refused$`));
      expect([blkid(loop, 'UUID'), blkid(loop, 'LABEL'), blkid(loop, 'TYPE')]).toEqual([slotUuid, 'ab-slot-b', 'ext4']);
      expect(markedOnDevice()).toBe('');
      // The attempt's listener is closed: the same port can be listened on again.
      const probe = createServer();
      await new Promise<void>((resolve, reject) => probe.once('error', reject).listen(listenPort, '127.0.0.1', resolve));
      await new Promise((resolve) => probe.close(resolve));
    });
  });

  it('an image larger than the slot inspect saw: refused before anything runs on the host', { timeout: T }, async () => {
    const e = await refusedBeforeTheHost(profile(), spare({ sizeBytes: built.manifest.imageBytes }));
    expect(e).toBeInstanceOf(SlotTooSmallError);
    expect(e.message).toBe(
      `the release image needs a slot of at least ${built.manifest.minSlotBytes} bytes (its filesystem is ${built.manifest.imageBytes} bytes), but the spare ${loop} has ${built.manifest.imageBytes} bytes: nothing was written`,
    );
  });

  it('a device smaller than the image (inspect said otherwise): refused on the host before writing, the device untouched', { timeout: T }, async () => {
    const before = blkid(small, 'UUID');
    const e = await installRelease(session.h, profile(), spare({ device: small })).then(() => null, (x: Error) => x);
    expect(e?.message).toMatch(new RegExp(`refusing: ${small} has ${8 << 20} bytes, the image needs ${built.manifest.imageBytes}; nothing was written`));
    expect([blkid(small, 'UUID'), blkid(small, 'TYPE')]).toEqual([before, 'ext4']);
  });

  it('a manifest whose signature does not verify: refused before anything runs on the host', { timeout: T }, async () => {
    const dir = join(session.tmp, 'forged');
    mkdirSync(dir, { recursive: true });
    const image = join(dir, 'rootfs.ext4.zst');
    for (const f of ['', '.minisig', '.manifest.json.minisig']) copyFileSync(`${built.image}${f}`, `${image}${f}`);
    // A smaller minimum slot, say: the manifest no longer matches its signature.
    const m = JSON.parse(readFileSync(built.manifestFile, 'utf8'));
    writeFileSync(`${image}.manifest.json`, JSON.stringify({ ...m, minSlotBytes: m.imageBytes }, null, 2));
    const e = await refusedBeforeTheHost(profile({ url: image, signature: `${image}.minisig` }));
    expect(e).toBeInstanceOf(ReleaseSignatureError);
    expect(e.message).toMatch(new RegExp(`^release.manifest: ${image}.manifest.json does not match its signature ${image}.manifest.json.minisig by key ${key.keyId}: minisign: Signature verification failed`));
  });

  it('a manifest signed by another key, or missing its signature: refused before anything runs on the host', { timeout: T }, async () => {
    const dir = join(session.tmp, 'otherkey');
    mkdirSync(dir, { recursive: true });
    const image = join(dir, 'rootfs.ext4.zst');
    for (const f of ['', '.minisig', '.manifest.json']) copyFileSync(`${built.image}${f}`, `${image}${f}`);
    const e1 = await refusedBeforeTheHost(profile({ url: image, signature: `${image}.minisig` }));
    expect(e1.message).toBe(`release.manifest: ${image}.manifest.json.minisig cannot be read (no such file)`);
    sign(other, `${image}.manifest.json`);
    const e2 = await refusedBeforeTheHost(profile({ url: image, signature: `${image}.minisig` }));
    expect(e2.message).toMatch(new RegExp(`^release.manifest: ${image}.manifest.json.minisig was made with key ${other.keyId}, but release.publicKey is key ${key.keyId}`));
  });

  it('the manifest of another build (signed, but for other bytes): refused before anything runs on the host', { timeout: T }, async () => {
    const dir = join(session.tmp, 'mixed');
    mkdirSync(dir, { recursive: true });
    const image = join(dir, 'rootfs.ext4.zst');
    copyFileSync(built.image, image);
    const bytes = readFileSync(image);
    bytes[bytes.length - 1]! ^= 0xff;
    writeFileSync(image, bytes);
    sign(key, image);
    copyFileSync(built.manifestFile, `${image}.manifest.json`);
    copyFileSync(`${built.manifestFile}.minisig`, `${image}.manifest.json.minisig`);
    const e = await refusedBeforeTheHost(profile({ url: image, signature: `${image}.minisig` }));
    expect(e).toBeInstanceOf(ManifestError);
    expect(e.message).toMatch(/^release\.manifest: .* describes an image of \d+ bytes with sha256 [0-9a-f]{64}, but the verified image .* has \d+ bytes with sha256 [0-9a-f]{64} \(a manifest of another build\)$/);
  });

  it('plan\'s release check verifies the manifest too', { timeout: T }, async () => {
    const ok = await checkRelease(profile().release);
    expect(ok).toMatchObject({ source: 'image', verified: true, sha256: built.manifest.sha256, keyId: key.keyId });
    const forged = join(session.tmp, 'forged', 'rootfs.ext4.zst');
    const bad = await checkRelease(profile({ url: forged, signature: `${forged}.minisig` }).release);
    expect(bad).toMatchObject({ verified: false, problem: expect.stringMatching(/^release\.manifest: .* does not match its signature/) });
  });

  it('an image whose own signature fails: refused before anything runs on the host', { timeout: T }, async () => {
    const e = await refusedBeforeTheHost(profile({ publicKey: other.pub }));
    expect(e).toBeInstanceOf(ReleaseSignatureError);
    expect(e.message).toMatch(/^release\.signature: .* was made with key .* but release\.publicKey is key /);
  });
});
