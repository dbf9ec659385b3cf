// Phase 3's delivery of a verified image to the host's receiving script, which unpacks or
// writes it and hashes what arrived: as its stdin over a bulk SSH connection, or pulled by the
// host over plain TCP from a listener on the controller (release.pull: ./release-pull.ts).
import type { Readable } from 'node:stream';
import { lowerPriority, lowerSessionPriority, type InstallPriority } from '../lib/host-priority.js';
import { INSTALL_LIMIT_MS } from '../lib/contract.js';
import type { ImageRelease, Profile } from '../lib/profile.js';
import type { ImageDigests } from './image-digests.js';
import { sh } from './host-io.js';
import { cancellationSignal } from './progress.js';
import { PULL_CONNECT_EXIT, PULL_NO_BASH_EXIT, PullConnectError, PullNotConnectedError, runPulled, type PullConfig } from './release-pull.js';
import { CommandError, SshHost, targetFromProfile } from './ssh.js';

// The bulk stream is bound by the host decrypting it. Where the host's CPU has AES instructions
// AES-GCM is the cheapest cipher; where it has not (e.g. QEMU's default CPU model), ChaCha20-
// Poly1305 is: 128 MB over SSH into the lab VM took 3.5 s with it vs 7.1 s with AES-GCM.
const GCM = ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com'];
const CHACHA = 'chacha20-poly1305@openssh.com';
const CTR = ['aes128-ctr', 'aes256-ctr'];

/** A separate connection for a bulk transfer, with the cipher this host decrypts fastest. */
export async function connectForBulk(h: SshHost, profile: Profile): Promise<SshHost> {
  const aes = (await sh(h, 'grep -qw aes /proc/cpuinfo && echo aes || echo none', [])).trim() === 'aes';
  return SshHost.connect({ ...targetFromProfile(profile), ciphers: aes ? [...GCM, CHACHA, ...CTR] : [CHACHA, ...GCM, ...CTR] });
}

/** Unpacks a release tarball from stdin into "$1" (exported for the benchmark: it measures this). */
export const UNPACK = {
  'tar.zst': 'zstd -dc -T0 | tar -xpf - --numeric-owner --xattrs --xattrs-include="*" -C "$1"',
  'tar.gz': 'gzip -dc | tar -xpf - --numeric-owner --xattrs --xattrs-include="*" -C "$1"',
  tar: 'tar -xpf - --numeric-owner --xattrs --xattrs-include="*" -C "$1"',
  // "$1" is the spare's device here: one sequential write, refused in this same shell if mounted.
  // oflag=direct: the blocks go to the device without a copy through the page cache, CPU the
  // host is also serving with (writing the lab's 356 MB image: 6.0 s buffered, 4.8 s direct, on
  // one emulated CPU); dd writes a final partial block without O_DIRECT, and fsync still flushes.
  'ext4-image': '{ ! findmnt -n -S "$1" >/dev/null || { echo "refusing: $1 is mounted" >&2; false; }; } && zstd -dc | dd of="$1" bs=4M iflag=fullblock oflag=direct conv=fsync status=none',
} as const;

/** The receiving script's exit status when the bytes it received are not the verified ones. */
export const DIGEST_MISMATCH_EXIT = 86;

// Hands the stream to the unpacker (stdout) and to sha256sum (fd 5) in whole 1 MiB blocks,
// through 1 MiB pipes (F_SETPIPE_SZ, 1031; left as they are where refused). Like `tee -p`, it keeps
// feeding the digest when the unpacker stops early, so an unpack failure is reported as one. tee
// moves 8 KiB per read, whatever arrives: pulling the lab's 124 MB image into its one-vCPU VM
// took 16.6–19.5 s with tee and 12.4–14.3 s with this (without any digest 8.9–10.3 s); over SSH
// 16.2–18.8 s and 15.4–17.6 s. perl-base is on every Debian and Ubuntu system; without perl, tee.
const SPLIT_PERL = `$SIG{PIPE} = "IGNORE"; open(my $h, ">&=", 5) or die "fd 5: $!\\n"; binmode STDIN;
my @to = (\\*STDOUT, $h); fcntl($_, 1031, 1 << 20) for @to;
while (1) {
  my ($b, $len) = ("", 0);
  while ($len < 1 << 20) {
    my $n = sysread(STDIN, $b, (1 << 20) - $len, $len);
    defined $n or die "reading the stream: $!\\n";
    last if $n == 0;
    $len += $n;
  }
  last if $len == 0;
  for my $i (reverse 0 .. $#to) {
    my $off = 0;
    while ($off < $len) {
      my $w = syswrite($to[$i], $b, $len - $off, $off);
      if (!defined $w) { die "splitting the stream: $!\\n" if $i > 0 || !$!{EPIPE}; splice(@to, $i, 1); last }
      $off += $w;
    }
  }
  last if $len < 1 << 20;
}`;

/** Each digest the receiving script can check: the tool that prints it, and its name in messages. */
const HOST_HASHES = [
  { tool: 'b2sum', name: 'blake2b' },
  { tool: 'sha256sum', name: 'sha256' },
] as const;

/**
 * Receives a release image on stdin, unpacks or writes it into "$1" and hashes, on the host, the
 * bytes it received: a splitter (SPLIT_PERL, or `tee -p`) hands them to the unpacker and to the
 * hash, b2sum against "$3" (the verified BLAKE2b-512) or, on a host without it, sha256sum
 * against "$2" (the verified sha256). Another digest exits with DIGEST_MISMATCH_EXIT, whatever
 * the unpacker said.
 */
export function receiveScript(format: ImageRelease['format']): string {
  const [b2, sha] = HOST_HASHES;
  return `st=$(mktemp); trap 'rm -f "$st"' EXIT
if command -v perl >/dev/null; then splitter() { perl -e '${SPLIT_PERL}'; }; else splitter() { tee -p /dev/fd/5; }; fi
if command -v ${b2.tool} >/dev/null; then hash=${b2.tool}; want=$3; name=${b2.name}; else hash=${sha.tool}; want=$2; name=${sha.name}; fi
got=$( { { splitter | { rc=0; ${UNPACK[format]} || rc=$?; echo "$rc" >"$st"; }; } 5>&1 >&2; } | $hash )
got=\${got%% *}
if [ "$got" != "$want" ]; then echo "the host received $name $got" >&2; exit ${DIGEST_MISMATCH_EXIT}; fi
rc=$(cat "$st" 2>/dev/null || echo unknown)
[ "$rc" = 0 ] || { echo "unpacking the release failed (exit $rc)" >&2; exit 1; }`;
}

/** The receiving script's arguments: where to, and the verified digests. */
export const receiveArgs = (target: string, d: ImageDigests): string[] => [target, d.sha256, d.blake2b];

/** The host received other bytes than the verified ones (altered between controller and host). */
export class HostDigestMismatchError extends Error {
  override name = 'HostDigestMismatchError';
}

/** How an image release reaches the host: pulled by it (release.pull), else over SSH. */
export const deliveryOf = (release: ImageRelease): 'ssh' | 'pull' => (release.pull ? 'pull' : 'ssh');

/**
 * The receiving script at the install's priority, under its lock; args: receiveArgs, then the
 * lock. On the bulk SSH connection its sshd, which decrypts the image, takes the priority too.
 */
const receive = (format: ImageRelease['format'], priority: InstallPriority, via: ReturnType<typeof deliveryOf>) =>
  `set -eu\n${lowerPriority(priority)}\n${via === 'ssh' ? `${lowerSessionPriority(priority)}\n` : ''}exec 9>"$4"; flock -w 60 9\n${receiveScript(format)}`;

/**
 * Streams `stdin` (the verified image) to the host, which unpacks it into `root` under `lock`
 * and checks its digest of what it received against `digests`.
 */
export async function receiveImage(bulk: SshHost, stdin: Readable, format: ImageRelease['format'], digests: ImageDigests, root: string, lock: string, priority: InstallPriority): Promise<void> {
  await bulk.script(receive(format, priority, 'ssh'), [...receiveArgs(root, digests), lock], { stdin, timeoutMs: INSTALL_LIMIT_MS, signal: cancellationSignal() }).catch((e) => {
    throw asDigestMismatch(e, digests);
  });
}

/**
 * The same receiving script, run over the control connection `h`, reading `source()` from a
 * connection the host opens to the controller (release.pull) instead of from SSH.
 */
export async function receivePulledImage(
  h: SshHost,
  pull: PullConfig,
  source: () => Readable,
  format: ImageRelease['format'],
  digests: ImageDigests,
  root: string,
  lock: string,
  priority: InstallPriority,
): Promise<void> {
  const { address, port, received, sent } = await runPulled(h, pull, source, receive(format, priority, 'pull'), [...receiveArgs(root, digests), lock], { timeoutMs: INSTALL_LIMIT_MS, signal: cancellationSignal() });
  if (received.status === 'fulfilled') {
    if (sent.status === 'rejected') throw sent.reason;
    return;
  }
  const e = received.reason;
  const code = e instanceof CommandError ? e.result.exitCode : null;
  if (code === PULL_CONNECT_EXIT) {
    throw new PullConnectError(
      `release.pull: the host could not connect to the controller at ${address} port ${port} (connectAddress and connectPort: the controller as the host reaches it; a firewall between them?); nothing was written: ${connectProblem((e as CommandError).result.stderr)}`,
    );
  }
  if (code === PULL_NO_BASH_EXIT) throw new PullConnectError('release.pull: the host has no bash, whose /dev/tcp opens the connection; nothing was written (without release.pull the image is streamed over SSH)');
  // A failure on the controller's side (the image changed after it was verified, the connection
  // broke) explains the digest the host then saw.
  if (sent.status === 'rejected' && !(sent.reason instanceof PullNotConnectedError)) throw sent.reason;
  throw asDigestMismatch(e, digests);
}

/** bash's reason for a failed /dev/tcp connection ("connect: Connection refused"), else its last words. */
const connectProblem = (stderr: string) => /connect: .*/.exec(stderr)?.[0] ?? stderr.trim().split('\n').pop() ?? 'no reason given';

/** The receiving script's digest exit as HostDigestMismatchError; any other error as it is. */
function asDigestMismatch(e: unknown, digests: ImageDigests): unknown {
  if (!(e instanceof CommandError) || e.result.exitCode !== DIGEST_MISMATCH_EXIT) return e;
  const [, name = 'sha256', got = ''] = /the host received (blake2b|sha256) ([0-9a-f]*)/.exec(e.result.stderr) ?? [];
  const want = name === 'blake2b' ? digests.blake2b : digests.sha256;
  return new HostDigestMismatchError(
    `the host received the release image with ${name} ${got || 'of nothing'}, but the verified image has ${name} ${want}: it was altered between the controller and the host; nothing was marked installed (a retry empties the spare and streams it again)`,
  );
}
