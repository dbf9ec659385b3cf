// The manifest of an ext4-image release (`ab-upgrade release build`): what the image is, what it
// needs from the slot, and the digests the controller and the host hold its bytes to. Written
// next to the image as <image>.manifest.json and validated here whenever it is read.
import { z } from 'zod';
import { formatZodIssues } from './profile.js';

export const MANIFEST_VERSION = 1;
/** The label `release build` gives the filesystem; the install replaces it with the slot's. */
export const BUILD_LABEL = 'ab-release';
/** Size of each independently compressed zstd frame of the image. */
export const FRAME_BYTES = 64 << 20;

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');
const bytes = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

export const releaseManifestSchema = z
  .object({
    format: z.literal('ext4-image'),
    version: z.literal(MANIFEST_VERSION),
    /** The compressed image's file name, next to the manifest. */
    image: z.string().regex(/^[A-Za-z0-9._+-]+$/, 'must be a plain file name (the image next to the manifest)'),
    compression: z.literal('zstd'),
    /** Uncompressed size of each zstd frame (the last may be smaller). */
    frameBytes: bytes,
    /** Size of the ext4 filesystem as built (shrunk): what is written to the slot. */
    imageBytes: bytes.refine((n) => n % 1024 === 0, 'must be a whole number of 1 KiB blocks'),
    /** The smallest slot the release may be installed on: the image plus room to run. */
    minSlotBytes: bytes,
    compressedBytes: bytes,
    /** sha256 of the compressed stream: the bytes the signature covers and the host receives. */
    sha256,
    /** sha256 of the uncompressed filesystem image, as built (before the slot's UUID and growth). */
    rawSha256: sha256,
    /** The filesystem takes the slot's UUID and label on install: fstab, carry and GRUB see the slot they expect. */
    uuidPolicy: z.literal('keep-slot'),
    kernels: z.array(z.string().regex(/^[A-Za-z0-9._+~-]+$/, 'must be a kernel version (vmlinuz-<version>)')).min(1, 'must name at least one kernel found in /boot'),
    os: z.object({ prettyName: z.string().min(1), versionId: z.string().min(1).nullable() }).strict(),
    builtAt: z.string().datetime(),
  })
  .strict()
  .refine((m) => m.minSlotBytes >= m.imageBytes, { path: ['minSlotBytes'], message: 'must not be smaller than imageBytes' });

export type ReleaseManifest = z.infer<typeof releaseManifestSchema>;

/** A manifest that is not valid JSON or not a valid manifest; each problem names its field. */
export class ManifestError extends Error {
  override name = 'ManifestError';
}

/** Parses and validates a manifest's text; `where` names it in errors. */
export function parseReleaseManifest(text: string, where: string): ReleaseManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ManifestError(`release manifest ${where} is not JSON: ${(e as Error).message}`);
  }
  const r = releaseManifestSchema.safeParse(json);
  if (!r.success) throw new ManifestError(`release manifest ${where} is not valid: ${formatZodIssues(r.error, '(manifest)').join('; ')}`);
  return r.data;
}

/** The smallest slot for an image: the image plus 10% (at least 64 MiB) to run in, whole MiB. */
export function minSlotBytesFor(imageBytes: number): number {
  const mib = 1 << 20;
  return Math.ceil((imageBytes + Math.max(64 * mib, imageBytes * 0.1)) / mib) * mib;
}

/** Why a slot of `slotBytes` cannot take the release, or null. */
export function slotTooSmall(m: Pick<ReleaseManifest, 'imageBytes' | 'minSlotBytes'>, slotBytes: number, device: string): string | null {
  if (slotBytes >= m.minSlotBytes) return null;
  return `the release image needs a slot of at least ${m.minSlotBytes} bytes (its filesystem is ${m.imageBytes} bytes), but the spare ${device} has ${slotBytes} bytes: nothing was written`;
}

/** Where the manifest of an image is, by default: next to it. */
export const manifestRefFor = (imageRef: string) => `${imageRef}.manifest.json`;
