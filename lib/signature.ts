// Release signatures: minisign's public key and signature formats (read here only to name keys
// and causes; the cryptographic check is `minisign -V`'s, see activities/signature.ts), and what
// the controller found when it checked a release, as `plan` reports it.

/**
 * A minisign public key as `minisign -G` prints it: base64 of "Ed", the 8-byte key id and the
 * 32-byte Ed25519 key (56 characters, the first three fixed by "Ed").
 */
export const MINISIGN_PUBLIC_KEY = /^RW[QRST][A-Za-z0-9+/]{53}$/;

/** A public key, signature or key id that is not what minisign writes. */
export class MinisignFormatError extends Error {
  override name = 'MinisignFormatError';
}

export interface MinisignPublicKey {
  /** The key id as minisign prints it (up to 16 uppercase hex digits). */
  keyId: string;
  /** The key line itself (what `minisign -V -P` takes). */
  key: string;
}

export interface MinisignSignature {
  /** Id of the key that made the signature. */
  keyId: string;
  /** Signed over the BLAKE2b hash of the file (minisign's default since 0.8), not the file itself. */
  prehashed: boolean;
  /** The signed comment (`-t`; by default a timestamp and the file name). */
  trustedComment: string;
}

const KEY_ID_BYTES = 8;

function decodeBase64(text: string, what: string): Buffer {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) throw new MinisignFormatError(`${what} is not base64`);
  return Buffer.from(text, 'base64');
}

/** minisign prints a key id as the little-endian 64-bit number its 8 bytes hold, in hex without leading zeros. */
function keyIdOf(bytes: Buffer): string {
  return bytes.readBigUInt64LE(0).toString(16).toUpperCase();
}

/** Lines of a minisign file without their line ends and trailing blank lines. */
const linesOf = (text: string) => text.replace(/\r/g, '').replace(/\n+$/, '').split('\n');

/**
 * A public key from a .pub file's content ("untrusted comment: …" then the key line) or from
 * the key line alone.
 */
export function parsePublicKey(text: string): MinisignPublicKey {
  const lines = linesOf(text.trim());
  const key = (lines[0]?.startsWith('untrusted comment:') ? lines[1] : lines[0])?.trim() ?? '';
  if (lines.length > 2 || !MINISIGN_PUBLIC_KEY.test(key)) {
    throw new MinisignFormatError('is not a minisign public key ("untrusted comment: …" and a line "RW…", as minisign -G writes it)');
  }
  return { key, keyId: keyIdOf(decodeBase64(key, 'the public key').subarray(2)) };
}

/**
 * A .minisig file: "untrusted comment: …", the signature line (algorithm, key id, Ed25519
 * signature), "trusted comment: …" and the signature over signature and trusted comment.
 */
export function parseSignature(text: string): MinisignSignature {
  const lines = linesOf(text);
  const bad = (why: string) => new MinisignFormatError(`is not a minisign signature (${why})`);
  if (lines.length !== 4 || !lines[0]!.startsWith('untrusted comment:') || !lines[2]!.startsWith('trusted comment: ')) {
    throw bad('expected 4 lines: untrusted comment, signature, trusted comment, global signature');
  }
  const sig = decodeBase64(lines[1]!.trim(), 'the signature line');
  const alg = sig.subarray(0, 2).toString('latin1');
  if (sig.length !== 2 + KEY_ID_BYTES + 64 || (alg !== 'ED' && alg !== 'Ed')) throw bad('the signature line is not an Ed25519 signature');
  if (decodeBase64(lines[3]!.trim(), 'the global signature').length !== 64) throw bad('the global signature is not 64 bytes');
  return { keyId: keyIdOf(sig.subarray(2)), prehashed: alg === 'ED', trustedComment: lines[2]!.slice('trusted comment: '.length) };
}

/** What the controller found when it checked a release, before anything is sent to the host. */
export type ReleaseCheck =
  | { source: 'debootstrap' }
  | {
      source: 'image';
      /** Whether the profile names a signature (false: allowUnsigned). */
      signed: boolean;
      /** The profile's public key's id, when it could be read. */
      keyId: string | null;
      verified: true;
      /** sha256 of the bytes that were verified: what the host must receive. */
      sha256: string;
      bytes: number;
      trustedComment: string | null;
    }
  | { source: 'image'; signed: boolean; keyId: string | null; verified: false; problem: string };

/** One line for `plan`: how the release is authenticated, and whether it was. */
export function describeReleaseCheck(c: ReleaseCheck): string {
  if (c.source === 'debootstrap') return 'authenticity: checked by debootstrap on the host against the Debian archive keyring (--force-check-gpg)';
  const key = c.keyId ? `key ${c.keyId}` : 'the profile\'s key';
  if (!c.verified) return `signature: NOT VERIFIED (${c.signed ? key : 'unsigned'}): ${c.problem}`;
  if (!c.signed) return `signature: none (allowUnsigned: true); sha256 ${c.sha256} checked`;
  // The signer chose the comment: control characters (a tab in minisign's default) are shown as spaces.
  const comment = c.trustedComment?.replace(/[\x00-\x1f\x7f]+/g, ' ');
  return `signature: verified with minisign, ${key}${comment ? ` (trusted comment: ${comment})` : ''}; sha256 ${c.sha256}`;
}
