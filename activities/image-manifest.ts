// An ext4-image release's manifest, checked on the controller before anything reaches the host:
// signed by the release's key when the image is, valid, and describing exactly the image that
// was verified (its sha256 and size), and the spare big enough for it.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SlotFacts } from '../lib/contract.js';
import type { ImageRelease } from '../lib/profile.js';
import { ManifestError, manifestRefFor, parseReleaseManifest, slotTooSmall, type ReleaseManifest } from '../lib/release-manifest.js';
import { loadSignedBy, readSmall, type VerifiedImage } from './release-image.js';
import { minisignVerify, ReleaseSignatureError } from './signature.js';

/** The spare is smaller than the release needs. */
export class SlotTooSmallError extends Error {
  override name = 'SlotTooSmallError';
}

/**
 * Reads the manifest once, checks its signature (<manifest>.minisig, by the image's key) over
 * exactly the text that is then parsed, and binds it to the verified image.
 */
export async function verifyManifest(r: ImageRelease, image: Pick<VerifiedImage, 'sha256' | 'bytes' | 'keyId'>): Promise<ReleaseManifest> {
  const ref = r.manifest ?? manifestRefFor(r.url);
  const text = await readSmall(ref, 'release.manifest', 'a release manifest');
  if (r.signature !== undefined && r.publicKey !== undefined) {
    const sigRef = `${ref}.minisig`;
    const signed = await loadSignedBy(sigRef, r.publicKey, 'release.manifest');
    const dir = await mkdtemp(join(tmpdir(), 'ab-upgrade-manifest-'));
    try {
      const file = join(dir, 'manifest.json');
      await writeFile(file, text, { mode: 0o600 });
      await minisignVerify(file, signed.text, signed.key.key).catch((e: unknown) => {
        if (!(e instanceof ReleaseSignatureError)) throw e;
        throw new ReleaseSignatureError(`release.manifest: ${ref} does not match its signature ${sigRef} by key ${signed.key.keyId}: minisign: ${e.message}`);
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  const m = parseReleaseManifest(text, ref);
  if (m.sha256 !== image.sha256 || m.compressedBytes !== image.bytes) {
    throw new ManifestError(
      `release.manifest: ${ref} describes an image of ${m.compressedBytes} bytes with sha256 ${m.sha256}, but the verified image ${r.url} has ${image.bytes} bytes with sha256 ${image.sha256} (a manifest of another build)`,
    );
  }
  return m;
}

/** Refuses a spare smaller than the manifest's minimum, before anything is written. */
export function checkSlotFits(m: ReleaseManifest, spare: Pick<SlotFacts, 'device' | 'sizeBytes'>): void {
  const problem = slotTooSmall(m, spare.sizeBytes, spare.device);
  if (problem) throw new SlotTooSmallError(problem);
}
