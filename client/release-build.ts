// `ab-upgrade release build`: a rootfs (a directory, or a tarball unpacked first) made into an
// ext4 filesystem image for a slot: mke2fs -d, shrunk to its minimum, compressed with zstd in
// independent frames, described by a manifest, and signed with minisign when a key is given.
// The host then writes it to the spare in one sequential stream (activities/install-image.ts).
import { execFile, spawn } from 'node:child_process';
import { lstat, mkdir, mkdtemp, open, readdir, readFile, readlink, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { Command } from 'commander';
import { z } from 'zod';
import { sha256File } from '../activities/image-digests.js';
import { newestKernel } from '../lib/grub.js';
import { parseOsRelease } from '../lib/layout.js';
import { formatZodIssues } from '../lib/profile.js';
import { BUILD_LABEL, FRAME_BYTES, MANIFEST_VERSION, minSlotBytesFor, releaseManifestSchema, type ReleaseManifest } from '../lib/release-manifest.js';
import { parseSignature } from '../lib/signature.js';

const run = promisify(execFile);

export const releaseBuildOptionsSchema = z
  .object({
    rootfs: z.string().min(1).optional(),
    tarball: z.string().min(1).optional(),
    out: z.string().min(1),
    signKey: z.string().min(1).optional(),
    /** zstd level: decompression speed hardly depends on it, the size and the build time do. */
    level: z.coerce.number().int().min(1).max(19).default(12),
    name: z.string().regex(/^[A-Za-z0-9._+-]+$/, 'must be a plain file name').default('rootfs'),
  })
  .strict()
  .superRefine((o, ctx) => {
    if ((o.rootfs === undefined) === (o.tarball === undefined)) ctx.addIssue({ code: 'custom', path: ['rootfs'], message: 'give exactly one of --rootfs DIR and --tarball FILE' });
  });
export type ReleaseBuildOptions = z.input<typeof releaseBuildOptionsSchema>;

export class ReleaseBuildError extends Error {
  override name = 'ReleaseBuildError';
}

export interface BuiltRelease {
  image: string;
  manifestFile: string;
  manifest: ReleaseManifest;
  /** The signatures written (image, manifest), with the key id; null without --sign-key. */
  signed: { keyId: string; files: string[] } | null;
}

/** Builds the image; `log` gets one line per step. */
export async function buildReleaseImage(input: ReleaseBuildOptions, log: (line: string) => void = () => undefined): Promise<BuiltRelease> {
  const parsed = releaseBuildOptionsSchema.safeParse(input);
  if (!parsed.success) throw new ReleaseBuildError(`release build: ${formatZodIssues(parsed.error, '(options)').join('; ')}`);
  const o = parsed.data;
  if (process.getuid?.() !== 0) throw new ReleaseBuildError('release build: must run as root (mke2fs -d copies every file of the rootfs with its owner, and only root reads them all)');
  const out = resolve(o.out);
  await mkdir(out, { recursive: true });
  const work = await mkdtemp(join(out, '.release-build-'));
  try {
    let root = o.rootfs ? resolve(o.rootfs) : join(work, 'root');
    if (o.tarball) {
      log(`unpacking ${o.tarball}`);
      await mkdir(root);
      await run('tar', ['-xpf', resolve(o.tarball), '--numeric-owner', '--xattrs', '--xattrs-include=*', '--acls', '-C', root], { maxBuffer: 1 << 24 });
    } else if (!(await stat(root).then((s) => s.isDirectory(), () => false))) {
      throw new ReleaseBuildError(`release build: --rootfs ${o.rootfs} is not a directory`);
    }
    root = root.replace(/\/+$/, '') || '/';

    const bootFiles = await readdir(join(root, 'boot')).catch(() => [] as string[]);
    const kernels = bootFiles.map((f) => /^vmlinuz-(.+)$/.exec(f)?.[1]).filter((v): v is string => !!v);
    if (!newestKernel(bootFiles)) throw new ReleaseBuildError(`release build: ${root}/boot has no vmlinuz-<version>: the slot could not boot`);
    const os = parseOsRelease((await readInRoot(root, 'etc/os-release')) ?? (await readInRoot(root, 'usr/lib/os-release')) ?? '');
    if (!os.PRETTY_NAME) throw new ReleaseBuildError(`release build: ${root} has no os-release with PRETTY_NAME`);

    const raw = join(work, 'image.ext4');
    await makeFilesystem(root, raw, log);
    const imageBytes = await shrink(raw, log);
    log(`hashing the ${imageBytes} byte image`);
    const rawSha256 = (await sha256File(raw)).sha256;

    const imageName = `${o.name}.ext4.zst`;
    const compressed = join(work, imageName);
    log(`compressing with zstd -${o.level} in ${FRAME_BYTES >> 20} MiB frames`);
    await compressFrames(raw, compressed, o.level);
    await rm(raw);
    const { sha256, bytes: compressedBytes } = await sha256File(compressed);

    const manifest = releaseManifestSchema.parse({
      format: 'ext4-image',
      version: MANIFEST_VERSION,
      image: imageName,
      compression: 'zstd',
      frameBytes: FRAME_BYTES,
      imageBytes,
      minSlotBytes: minSlotBytesFor(imageBytes),
      compressedBytes,
      sha256,
      rawSha256,
      uuidPolicy: 'keep-slot',
      kernels,
      os: { prettyName: os.PRETTY_NAME, versionId: os.VERSION_ID ?? null },
      builtAt: new Date().toISOString(),
    } satisfies ReleaseManifest);
    const manifestName = `${imageName}.manifest.json`;
    await writeFile(join(work, manifestName), `${JSON.stringify(manifest, null, 2)}\n`);

    let signed: BuiltRelease['signed'] = null;
    const files = [imageName, manifestName];
    if (o.signKey) {
      for (const f of [imageName, manifestName]) {
        log(`signing ${f}`);
        await minisignSign(resolve(o.signKey), join(work, f), `ab-upgrade release ${imageName} sha256 ${sha256}`);
      }
      const keyId = parseSignature(await readFile(join(work, `${imageName}.minisig`), 'utf8')).keyId;
      signed = { keyId, files: [`${imageName}.minisig`, `${manifestName}.minisig`].map((f) => join(out, f)) };
      files.push(`${imageName}.minisig`, `${manifestName}.minisig`);
    }
    // The manifest last: a manifest next to an image is always that image's.
    for (const f of files.reverse()) await rename(join(work, f), join(out, f));
    return { image: join(out, imageName), manifestFile: join(out, manifestName), manifest, signed };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** A file of the rootfs, following symlinks inside the rootfs, never out of it (os-release is one). */
async function readInRoot(root: string, rel: string, depth = 0): Promise<string | null> {
  const p = join(root, rel);
  const st = await lstat(p).catch(() => null);
  if (!st || depth > 8) return null;
  if (st.isSymbolicLink()) {
    const target = await readlink(p);
    return readInRoot(root, isAbsolute(target) ? target.slice(1) : join(dirname(rel), target), depth + 1);
  }
  return st.isFile() ? readFile(p, 'utf8') : null;
}

/**
 * mke2fs -d into a file with room to spare (shrunk afterwards). 4 KiB blocks whatever its size
 * (mke2fs would pick 1 KiB for a small one, poor once grown to the slot). No metadata_csum_seed: GRUB
 * before 2.12 cannot read such a filesystem, and the old slot's GRUB boots this one.
 */
async function makeFilesystem(root: string, file: string, log: (l: string) => void): Promise<void> {
  const used = Number((await run('du', ['-s', '-B1', '-x', root], { maxBuffer: 1 << 20 })).stdout.split('\t')[0]);
  const files = Number((await run('sh', ['-c', 'find "$1" -xdev | wc -l', 'sh', root], { maxBuffer: 1 << 20 })).stdout.trim());
  const size = Math.ceil((used * 1.3 + (files + 1024) * 4096 + (128 << 20)) / (1 << 20)) << 20;
  // The default inode ratio (one per 16 KiB) may be too few for a tree of many small files.
  const inodes = Math.ceil(files * 1.2) + 1024;
  const args = ['-q', '-F', '-t', 'ext4', '-b', '4096', '-O', '^metadata_csum_seed', '-L', BUILD_LABEL, '-d', root];
  if (inodes > size / 16384) args.push('-N', String(inodes));
  log(`mke2fs -t ext4 -d ${root} (${used} bytes in ${files} files, a ${size} byte filesystem to shrink)`);
  const fh = await open(file, 'w');
  await fh.truncate(size);
  await fh.close();
  await run('mke2fs', [...args, file, `${size / 1024}k`], { maxBuffer: 1 << 24 });
}

/** e2fsck -f, resize2fs -M, and the file cut to the filesystem's size; returns that size. */
async function shrink(file: string, log: (l: string) => void): Promise<number> {
  await fsck(file);
  log('resize2fs -M');
  await run('resize2fs', ['-M', file], { maxBuffer: 1 << 24 });
  await fsck(file);
  const head = (await run('dumpe2fs', ['-h', file], { maxBuffer: 1 << 24 })).stdout;
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)$`, 'm').exec(head)?.[1]);
  const bytes = field('Block count') * field('Block size');
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new ReleaseBuildError(`release build: dumpe2fs gave no block count and size for ${file}`);
  const fh = await open(file, 'r+');
  await fh.truncate(bytes);
  await fh.close();
  return bytes;
}

async function fsck(file: string): Promise<void> {
  await run('e2fsck', ['-fy', file], { maxBuffer: 1 << 24 }).catch((e: { code?: number; stderr?: string }) => {
    if (e.code !== 1) throw new ReleaseBuildError(`release build: e2fsck -f ${basename(file)} failed (exit ${e.code}): ${String(e.stderr ?? '').trim()}`);
  });
}

/**
 * Independent zstd frames of FRAME_BYTES each, concatenated (a valid zstd stream, which `zstd -d`
 * reads as one): split hands each chunk to its own zstd, one after another, in order.
 */
async function compressFrames(raw: string, out: string, level: number): Promise<void> {
  await run('sh', ['-c', 'split -b "$3" --filter="zstd -q -c -T0 -$4" "$1" > "$2"', 'sh', raw, out, String(FRAME_BYTES), String(level)], { maxBuffer: 1 << 20 });
  // Checks the result decompresses (every frame) before it is published.
  await run('zstd', ['-q', '-t', out]);
}

/** minisign -S with the terminal for a password prompt; the trusted comment names the image. */
function minisignSign(key: string, file: string, comment: string): Promise<void> {
  return new Promise((ok, fail) => {
    const child = spawn('minisign', ['-S', '-s', key, '-m', file, '-t', comment], { stdio: ['inherit', 'ignore', 'inherit'] });
    child.once('error', (e: NodeJS.ErrnoException) => fail(e.code === 'ENOENT' ? new ReleaseBuildError('release build: minisign is not installed (apt-get install minisign)') : e));
    child.once('close', (code) => (code === 0 ? ok() : fail(new ReleaseBuildError(`release build: minisign -S with ${key} failed (exit ${code})`))));
  });
}

/** `ab-upgrade release build`: prints the files written and the manifest's figures. */
export function releaseCommand(): Command {
  const release = new Command('release').description('build release artifacts on the controller');
  release
    .command('build')
    .description('make an ext4 filesystem image of a rootfs for the ext4-image release format (run as root): mke2fs -d, shrunk, zstd frames, a manifest, minisign signatures with --sign-key')
    .option('--rootfs <dir>', 'the root filesystem tree')
    .option('--tarball <file>', 'or a rootfs tarball (tar, tar.gz, tar.zst), unpacked to a temporary directory first')
    .requiredOption('--out <dir>', 'where <name>.ext4.zst and its .manifest.json (and .minisig files) are written')
    .option('--sign-key <file>', 'minisign secret key: signs the image and the manifest')
    .option('--level <n>', 'zstd level, 1-19', '12')
    .option('--name <name>', 'file name stem', 'rootfs')
    .action(async (o: { rootfs?: string; tarball?: string; out: string; signKey?: string; level: string; name: string }) => {
      const t0 = Date.now();
      const b = await buildReleaseImage(o, (l) => console.error(`release build: ${l}`));
      const m = b.manifest;
      console.log(`image     ${b.image} (${m.compressedBytes} bytes, sha256 ${m.sha256})`);
      console.log(`manifest  ${b.manifestFile}`);
      console.log(`filesystem ${m.imageBytes} bytes (sha256 ${m.rawSha256}); slots from ${m.minSlotBytes} bytes; kernels ${m.kernels.join(', ')}; ${m.os.prettyName}`);
      console.log(b.signed ? `signed    by key ${b.signed.keyId}: ${b.signed.files.join(', ')}` : 'signed    no (--sign-key not given): profiles must then pin sha256 with allowUnsigned: true');
      console.log(`took      ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    });
  return release;
}
