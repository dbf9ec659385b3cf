// Small signed releases for the tests: minisign key pairs made with the real `minisign -G -W`,
// rootfs tarballs with a kernel, an os-release and a payload, signed with `minisign -S`.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestKey {
  /** The .pub file. */
  pub: string;
  /** The secret key file (unencrypted). */
  sec: string;
  /** The key line ("RW…"). */
  key: string;
  keyId: string;
}

export function makeKey(dir: string, name: string): TestKey {
  const pub = join(dir, `${name}.pub`);
  const sec = join(dir, `${name}.key`);
  execFileSync('minisign', ['-G', '-W', '-p', pub, '-s', sec], { stdio: 'ignore' });
  const [comment, key] = readFileSync(pub, 'utf8').trim().split('\n');
  return { pub, sec, key: key!, keyId: comment!.replace('untrusted comment: minisign public key ', '') };
}

/** Signs `file` with `key` into `sig` (default: <file>.minisig); `legacy` signs the whole file (-l). */
export function sign(key: TestKey, file: string, sig = `${file}.minisig`, legacy = false): string {
  execFileSync('minisign', ['-S', ...(legacy ? ['-l'] : []), '-s', key.sec, '-m', file, '-x', sig, '-t', 'ab-upgrade test release'], { stdio: 'ignore' });
  return sig;
}

export const sha256Of = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
/** BLAKE2b-512, the digest a host with b2sum checks. */
export const blake2bOf = (file: string) => createHash('blake2b512').update(readFileSync(file)).digest('hex');

export const KERNEL_VERSION = '6.12.0-1-amd64';
export const PRETTY_NAME = 'Debian GNU/Linux 13 (trixie)';
/** Size of usr/share/ab-payload, the one large file in the tarball (the others are a few bytes). */
export const PAYLOAD_BYTES = 512 * 1024;

/**
 * A rootfs tarball at <dir>/<name>.<format>: /boot with a kernel and initrd, /etc/os-release and
 * a random payload; returns its path. The payload's bytes (the tar's bulk) are kept next to it.
 */
export function buildRelease(dir: string, name: string, format: 'tar.zst' | 'tar'): string {
  const tree = join(dir, `${name}-tree`);
  mkdirSync(join(tree, 'boot'), { recursive: true });
  mkdirSync(join(tree, 'etc'), { recursive: true });
  mkdirSync(join(tree, 'usr/share'), { recursive: true });
  writeFileSync(join(tree, `boot/vmlinuz-${KERNEL_VERSION}`), 'kernel\n');
  writeFileSync(join(tree, `boot/initrd.img-${KERNEL_VERSION}`), 'initrd\n');
  writeFileSync(join(tree, 'etc/os-release'), `PRETTY_NAME="${PRETTY_NAME}"\nID=debian\nVERSION_ID="13"\n`);
  writeFileSync(join(tree, 'usr/share/ab-payload'), randomBytes(PAYLOAD_BYTES));
  const tar = join(dir, `${name}.tar`);
  execFileSync('tar', ['--numeric-owner', '-C', tree, '-cf', tar, '.']);
  if (format === 'tar') return tar;
  execFileSync('zstd', ['-q', '-f', tar, '-o', `${tar}.zst`]);
  return `${tar}.zst`;
}
