// The ext4-image release format's two inputs: the manifest `release build` writes (validated
// whenever it is read, each problem naming its field) and the profile's release.format/manifest.
import { describe, expect, it } from 'vitest';
import { ProfileError } from '../../lib/profile.js';
import { ManifestError, minSlotBytesFor, parseReleaseManifest, slotTooSmall, type ReleaseManifest } from '../../lib/release-manifest.js';
import { minimalProfile } from '../helpers/unit-fixtures.js';

const SHA = 'a'.repeat(64);
const manifest = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  format: 'ext4-image',
  version: 1,
  image: 'rootfs.ext4.zst',
  compression: 'zstd',
  frameBytes: 64 << 20,
  imageBytes: 1 << 30,
  minSlotBytes: minSlotBytesFor(1 << 30),
  compressedBytes: 400 << 20,
  sha256: SHA,
  rawSha256: 'b'.repeat(64),
  uuidPolicy: 'keep-slot',
  kernels: ['6.12.48+deb13-cloud-amd64'],
  os: { prettyName: 'Debian GNU/Linux 13 (trixie)', versionId: '13' },
  builtAt: '2026-12-02T14:00:00.000Z',
  ...over,
});
const parse = (m: unknown) => parseReleaseManifest(JSON.stringify(m), '/r/rootfs.ext4.zst.manifest.json');
const problem = (m: unknown) => {
  try {
    parse(m);
  } catch (e) {
    expect(e).toBeInstanceOf(ManifestError);
    return (e as Error).message;
  }
  throw new Error('the manifest was accepted');
};

describe('release manifest', () => {
  it('accepts what release build writes', () => {
    expect(parse(manifest())).toEqual(manifest());
  });

  it.each([
    [{ format: 'tar.zst' }, 'format: Invalid input: expected "ext4-image"'],
    [{ uuidPolicy: 'random' }, 'uuidPolicy: Invalid input: expected "keep-slot"'],
    [{ sha256: 'ABC' }, 'sha256: must be 64 lowercase hex digits'],
    [{ imageBytes: 1000 }, 'imageBytes: must be a whole number of 1 KiB blocks'],
    [{ minSlotBytes: 1 << 20 }, 'minSlotBytes: must not be smaller than imageBytes'],
    [{ kernels: [] }, 'kernels: must name at least one kernel found in /boot'],
    [{ image: '../etc/passwd' }, 'image: must be a plain file name (the image next to the manifest)'],
    [{ extra: 1 }, '(manifest): unrecognized key "extra"'],
  ])('refuses %j, naming the field', (over, message) => {
    expect(problem(manifest(over))).toContain(message);
  });

  it('refuses text that is not JSON, naming the file', () => {
    expect(() => parseReleaseManifest('{', '/r/m.json')).toThrow(/^release manifest \/r\/m\.json is not JSON: /);
  });

  it('minimum slot: the image plus 10 %, at least 64 MiB, in whole MiB', () => {
    expect(minSlotBytesFor(16 << 20)).toBe(80 << 20);
    expect(minSlotBytesFor(2 * 2 ** 30)).toBe(2253 * 2 ** 20); // 2048 MiB + 204.8 MiB, rounded up
    const m = parse(manifest()) as ReleaseManifest;
    expect(slotTooSmall(m, m.minSlotBytes, '/dev/vda2')).toBeNull();
    expect(slotTooSmall(m, m.minSlotBytes - 1, '/dev/vda2')).toBe(
      `the release image needs a slot of at least ${m.minSlotBytes} bytes (its filesystem is ${m.imageBytes} bytes), but the spare /dev/vda2 has ${m.minSlotBytes - 1} bytes: nothing was written`,
    );
  });
});

describe('profile release.format and release.manifest', () => {
  const image = (over: Record<string, unknown>) => ({ source: 'image', url: '/r/rootfs.ext4.zst', signature: '/r/rootfs.ext4.zst.minisig', publicKey: '/r/k.pub', ...over });
  const problems = (release: Record<string, unknown>) => {
    try {
      minimalProfile({ release });
    } catch (e) {
      expect(e).toBeInstanceOf(ProfileError);
      return (e as ProfileError).problems;
    }
    throw new Error('the profile was accepted');
  };

  it('ext4-image given explicitly, with or without a manifest path', () => {
    expect(minimalProfile({ release: image({ format: 'ext4-image' }) }).release).toMatchObject({ format: 'ext4-image' });
    expect(minimalProfile({ release: image({ format: 'ext4-image', manifest: 'https://r.example/m.json' }) }).release).toMatchObject({ manifest: 'https://r.example/m.json' });
  });

  it('tarballs keep their inferred format (the default)', () => {
    expect(minimalProfile({ release: image({ url: '/r/trixie.tar.zst', signature: '/r/t.minisig' }) }).release).toMatchObject({ format: 'tar.zst' });
  });

  it('an image url without format: refused, naming release.format', () => {
    expect(problems(image({}))).toEqual(['release.format: required for a filesystem image: format: ext4-image (or tar.zst, tar.gz, tar for a tarball)']);
  });

  it('a manifest for a tarball: refused, naming release.manifest', () => {
    expect(problems(image({ url: '/r/t.tar.zst', manifest: '/r/m.json' }))).toEqual(['release.manifest: only for format: ext4-image (a tarball has no manifest)']);
  });

  it('a relative manifest path, an unknown format, credentials in a manifest URL: refused, naming the field', () => {
    expect(problems(image({ format: 'ext4-image', manifest: 'm.json' }))).toEqual(["release.manifest: must be the absolute path or the http(s) URL of the image's manifest (.manifest.json)"]);
    expect(problems(image({ format: 'squashfs' }))[0]).toMatch(/^release\.format: Invalid option: expected one of "tar\.zst"\|"tar\.gz"\|"tar"\|"ext4-image"/);
    expect(problems(image({ format: 'ext4-image', manifest: 'https://u:p@r.example/m.json' }))[0]).toMatch(/^release\.manifest: must not contain a user name or password/);
  });

  it('an unsigned image still needs allowUnsigned and a sha256', () => {
    expect(problems({ source: 'image', url: '/r/rootfs.ext4.zst', format: 'ext4-image' })[0]).toMatch(/^release\.signature: required/);
  });
});
