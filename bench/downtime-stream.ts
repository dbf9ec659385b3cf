// The image install alone, measured three ways with the same bytes: raw SSH transfer, the
// product's own receiving script over SSH (the stream), and the same unpack or write from a
// local copy on the host. Each format (the rootfs tarball, the ext4 image of the same rootfs)
// against its own bytes; the ext4 image also pulled by the host over plain TCP (release.pull),
// raw and through the same receiving script.
import { createReadStream, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AFTER_WRITE } from '../activities/install-image.js';
import { hashFile } from '../activities/image-digests.js';
import { connectForBulk, receiveImage, receivePulledImage, UNPACK } from '../activities/receive-image.js';
import { runPulled, type PullConfig } from '../activities/release-pull.js';
import { SshHost, targetFromProfile } from '../activities/ssh.js';
import type { InstallPriority } from '../lib/host-priority.js';
import type { Profile } from '../lib/profile.js';
import { LAB_PULL, labProfile, type LabArtifact, type LabImage } from '../lab/session.js';
import { startVm, type VmHandle } from '../lab/vm.js';
import { median, patiently, round } from './downtime-restarts.js';

/** The install lock the receiving script takes (the benchmark's own). */
export const BENCH_LOCK = '/run/ab-bench.lock';

/**
 * The same image bytes three ways, into the spare slot (keeping its label; the next upgrade
 * reformats it), `reps` times each; medians. All over the install's own bulk connection (its
 * cipher follows the host's CPU).
 */
export async function streamFigures(profile: Profile, release: LabArtifact, spareDevice: string, ext4: LabArtifact | null, reps = 3) {
  const image = release.path;
  const control = await patiently(() => SshHost.connect(targetFromProfile(profile)));
  const h = await connectForBulk(control, profile).finally(() => control.close());
  const mnt = '/run/ab-bench';
  const timed = async (f: () => Promise<unknown>) => {
    const t = Date.now();
    await f();
    return (Date.now() - t) / 1000;
  };
  const fresh = () => h.script('set -eu; rm -rf "$1/root"; mkdir "$1/root"; sync; echo 3 > /proc/sys/vm/drop_caches', [mnt], { timeoutMs: 600_000 });
  const runs: Array<{ rawSshS: number; streamS: number; localUnpackS: number }> = [];
  try {
    await h.script('set -eu; umount "$2" 2>/dev/null || true; l=$(blkid -s LABEL -o value "$1" || true); mkfs.ext4 -q -F ${l:+-L "$l"} "$1"; mkdir -p "$2"; mount "$1" "$2"; mkdir -p "$2/root"', [spareDevice, mnt]);
    await h.upload(`${mnt}/image.tar.zst`, createReadStream(image));
    const digests = await hashFile(image);
    for (let i = 0; i < reps; i++) {
      const rawSshS = await timed(() => h.exec(['sh', '-c', 'cat > /dev/null'], { stdin: createReadStream(image), timeoutMs: 600_000 }));
      await fresh();
      // The product's own receiving script (unpack, and the host's digest of what it received),
      // fed over SSH as the install does; and its unpack command alone from a local file.
      const streamS = await timed(() => receiveImage(h, createReadStream(image), 'tar.zst', digests, `${mnt}/root`, BENCH_LOCK, profile.install));
      await fresh();
      const localUnpackS = await timed(() => h.script(`set -eu\n{ ${UNPACK['tar.zst']}; } < "$2"`, [`${mnt}/root`, `${mnt}/image.tar.zst`], { timeoutMs: 600_000 }));
      await fresh();
      runs.push({ rawSshS, streamS, localUnpackS });
    }
    await h.script('set -eu; cd /; umount "$1"', [mnt]);
    const tar = summary(runs);
    return { ...tar, ext4Image: ext4 ? { ...(await imageStreamFigures(h, profile.install, ext4, spareDevice, reps)), bytes: statSync(ext4.path).size } : null, bytes: statSync(image).size };
  } finally {
    h.close();
  }
}

type Run = { rawSshS: number; streamS: number; localUnpackS: number; postS?: number; parts?: StreamParts; pull?: PullRun };
/** The same bytes pulled by the host over plain TCP (release.pull): raw, and through the product's receiving script. */
type PullRun = { rawPullS: number; pullStreamS: number; pullNoHashS: number };
/**
 * What the stream is made of, each alone: decompression, the host's digest (b2sum, which the
 * receiving script runs where it exists; sha256sum, its fallback, for comparison), the stream
 * without the digest.
 */
type StreamParts = { localDecompressS: number; localHashS: number; localSha256S: number; streamNoHashS: number };
function summary(runs: Run[]) {
  const rawSshS = round(median(runs.map((r) => r.rawSshS)));
  const streamS = round(median(runs.map((r) => r.streamS)));
  const localUnpackS = round(median(runs.map((r) => r.localUnpackS)));
  return { rawSshS, streamS, localUnpackS, streamRatio: round(streamS / Math.max(rawSshS, localUnpackS)), runs: runs.map((r) => [r.rawSshS, r.streamS, r.localUnpackS].map(round)) };
}

/**
 * The ext4 image the same three ways, straight onto the spare device: raw SSH transfer of its
 * bytes, the product's receiving script (zstd -d | dd, the host's digest), and the same write
 * from a local copy (on the running root: the data partition is too small). postS: the fsck,
 * UUID and growth that follow the write in the install (not part of the stream). The spare gets
 * its label and UUID back afterwards, so the next upgrade finds it.
 */
async function imageStreamFigures(h: SshHost, install: InstallPriority, ext4: LabArtifact, spareDevice: string, reps: number) {
  const local = '/var/tmp/ab-bench.ext4.zst';
  const timed = async (f: () => Promise<unknown>) => {
    const t = Date.now();
    await f();
    return (Date.now() - t) / 1000;
  };
  const [label, uuid] = (await h.script('set -eu; blkid -s LABEL -o value "$1" || true; blkid -s UUID -o value "$1"', [spareDevice])).stdout.split('\n');
  if (!uuid) throw new Error(`${spareDevice}: no filesystem UUID to give back after the image runs`);
  const fresh = () => h.script('set -eu; sync; echo 3 > /proc/sys/vm/drop_caches', [], { timeoutMs: 600_000 });
  const runs: Run[] = [];
  try {
    await h.upload(local, createReadStream(ext4.path));
    const digests = await hashFile(ext4.path);
    for (let i = 0; i < reps; i++) {
      const rawSshS = await timed(() => h.exec(['sh', '-c', 'cat > /dev/null'], { stdin: createReadStream(ext4.path), timeoutMs: 600_000 }));
      await fresh();
      const streamS = await timed(() => receiveImage(h, createReadStream(ext4.path), 'ext4-image', digests, spareDevice, BENCH_LOCK, install));
      const postS = await timed(() => h.script(`set -eu\n${AFTER_WRITE}`, [spareDevice, uuid, label || 'ab-bench', BENCH_LOCK], { timeoutMs: 600_000 }));
      await fresh();
      const localUnpackS = await timed(() => h.script(`set -eu\n{ ${UNPACK['ext4-image']}; } < "$2"`, [spareDevice, local], { timeoutMs: 600_000 }));
      await fresh();
      // The parts alone, so the stream can be compared with their sum (no overlap) and their maximum.
      const localDecompressS = await timed(() => h.script('set -eu; zstd -dc < "$1" > /dev/null', [local], { timeoutMs: 600_000 }));
      await fresh();
      const localHashS = await timed(() => h.script('set -eu; b2sum < "$1" > /dev/null', [local], { timeoutMs: 600_000 }));
      await fresh();
      const localSha256S = await timed(() => h.script('set -eu; sha256sum < "$1" > /dev/null', [local], { timeoutMs: 600_000 }));
      await fresh();
      const streamNoHashS = await timed(() => h.script(`set -eu\n${UNPACK['ext4-image']}`, [spareDevice], { stdin: createReadStream(ext4.path), timeoutMs: 600_000 }));
      await fresh();
      const rawPullS = await timed(() => pullInto(h, LAB_PULL, ext4.path, 'cat > /dev/null'));
      await fresh();
      const pullStreamS = await timed(() => receivePulledImage(h, LAB_PULL, () => createReadStream(ext4.path), 'ext4-image', digests, spareDevice, BENCH_LOCK, install));
      await fresh();
      const pullNoHashS = await timed(() => pullInto(h, LAB_PULL, ext4.path, UNPACK['ext4-image'], [spareDevice]));
      await fresh();
      runs.push({ rawSshS, streamS, localUnpackS, postS, parts: { localDecompressS, localHashS, localSha256S, streamNoHashS }, pull: { rawPullS, pullStreamS, pullNoHashS } });
    }
  } finally {
    await h.script('set -eu; rm -f "$1"; mkfs.ext4 -q -F ${3:+-L "$3"} -U "$4" "$2"', [local, spareDevice, label ?? '', uuid], { timeoutMs: 600_000 });
  }
  const part = (k: keyof StreamParts) => round(median(runs.map((r) => r.parts![k])));
  const s = summary(runs);
  const parts = { localDecompressS: part('localDecompressS'), localHashS: part('localHashS'), localSha256S: part('localSha256S'), streamNoHashS: part('streamNoHashS') };
  // 1.0: the stream costs exactly the sum of its parts run one after another (nothing overlaps).
  const serialSumS = round(s.rawSshS + s.localUnpackS + parts.localHashS);
  const rawPullS = round(median(runs.map((r) => r.pull!.rawPullS)));
  const pullStreamS = round(median(runs.map((r) => r.pull!.pullStreamS)));
  const pullNoHashS = round(median(runs.map((r) => r.pull!.pullNoHashS)));
  const pull = {
    rawPullS,
    pullStreamS,
    pullNoHashS,
    pullStreamRatio: round(pullStreamS / Math.max(rawPullS, s.localUnpackS)),
    runs: runs.map((r) => [r.pull!.rawPullS, r.pull!.pullStreamS, r.pull!.pullNoHashS].map(round)),
  };
  return { ...s, postS: round(median(runs.map((r) => r.postS!))), parts, serialSumS, streamToSerialSum: round(s.streamS / serialSumS), pull };
}

/**
 * The host reads the file from the controller's pull listener into `body` (its stdin; args
 * before the pull's own): `cat > /dev/null` for the transfer alone, or the write without the digest.
 */
async function pullInto(h: SshHost, pull: PullConfig, file: string, body: string, args: string[] = []): Promise<void> {
  const { received, sent } = await runPulled(h, pull, () => createReadStream(file), body, args, { timeoutMs: 600_000 });
  for (const end of [received, sent]) if (end.status === 'rejected') throw end.reason;
}

/**
 * The stream again on a 2-vCPU lab VM (multi-threaded TCG, slot A's Debian 12 kernel): with
 * one vCPU, SSH decryption and zstd + tar cannot overlap at all, so only a second CPU shows how
 * well the stream overlaps them (real servers have many cores).
 */
export async function streamFiguresTwoVcpus(image: LabImage, release: LabArtifact, ext4: LabArtifact | null) {
  const vm = await startVm({ disk: image.disk, layout: image.layout, name: 'bench-2vcpu', workDir: mkdtempSync(join(tmpdir(), 'ab-bench-')), cpus: 2, tcgThread: 'multi' });
  try {
    await vm.waitForSsh(240_000);
    const spare = (await vm.ssh('blkid -L ab-slot-b', { timeoutMs: 30_000 })).stdout.trim();
    if (!spare) throw new Error('2-vCPU VM: no ab-slot-b');
    return { vm: await vmFacts(vm, image.layout), stream: await streamFigures(labProfile(image, vm, release), release, spare, ext4) };
  } finally {
    await vm.stop();
  }
}

/** How the VM runs as started (accelerator, vCPUs) and as the guest sees itself. */
export async function vmFacts(vm: VmHandle, layout: LabImage['layout']) {
  const guest = await vm.ssh('nproc; systemd-detect-virt || true; uname -r', { timeoutMs: 30_000 });
  const [nproc, virt, kernel] = guest.stdout.trim().split('\n');
  return { layout, accel: vm.accel, vcpus: vm.cpus, firmwareWaitS: vm.firmwareWaitS, guestNproc: Number(nproc), guestVirt: virt ?? null, guestKernel: kernel ?? null };
}
